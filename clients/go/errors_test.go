package llamactl_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	llamactl "llamactl.dev/client/go"
)

// apiError asserts that err is an *APIError with this status and code, matched by the
// helper is (and by nothing else's helper), and returns it.
func apiError(t *testing.T, what string, err error, status int, code string, is func(error) bool) *llamactl.APIError {
	t.Helper()
	var e *llamactl.APIError
	if !errors.As(err, &e) {
		t.Fatalf("%s: %v (%T), want an *APIError", what, err, err)
	}
	if e.StatusCode != status || e.Code != code || e.Message == "" {
		t.Fatalf("%s: %d %s %q, want %d %s", what, e.StatusCode, e.Code, e.Message, status, code)
	}
	helpers := []func(error) bool{llamactl.IsBadRequest, llamactl.IsUnauthorized,
		llamactl.IsForbidden, llamactl.IsNotFound, llamactl.IsConflict, llamactl.IsRateLimited}
	matched := 0
	for _, h := range helpers {
		if h(err) {
			matched++
		}
	}
	if !is(err) || matched != 1 {
		t.Fatalf("%s: the helpers match %d times (want its own, once): %v", what, matched, err)
	}
	return e
}

func TestErrorsOfTheOpenServer(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.open.url)
	const name = "go-errors"
	t.Cleanup(func() { removeInstance(c, name) })

	_, err := c.GetInstance(ctx, "no-such-instance")
	apiError(t, "get unknown", err, 404, "INSTANCE_NOT_FOUND", llamactl.IsNotFound)
	if !errors.Is(err, llamactl.ErrNotFound) || errors.Is(err, llamactl.ErrConflict) {
		t.Fatalf("errors.Is: %v", err)
	}

	_, err = c.CreateInstance(ctx, llamactl.CreateInstanceRequest{Name: "bad name!", ModelPath: e.model})
	apiError(t, "bad name", err, 400, "VALIDATION_ERROR", llamactl.IsBadRequest)
	_, err = c.CreateInstance(ctx, llamactl.CreateInstanceRequest{
		Name: name, ModelPath: filepath.Join(e.dir, "missing.gguf")})
	apiError(t, "missing model", err, 400, "MODEL_NOT_FOUND", llamactl.IsBadRequest)
	_, err = c.CreateInstance(ctx, llamactl.CreateInstanceRequest{
		Name: name, ModelPath: e.model, Options: llamactl.Options{"no_such_flag": 1}})
	if bad := apiError(t, "unknown option", err, 400, "VALIDATION_ERROR", llamactl.IsBadRequest); bad.DetailsString() == "" {
		t.Fatalf("unknown option: no details: %v", err)
	}

	if _, err := c.CreateInstance(ctx, llamactl.CreateInstanceRequest{Name: name, ModelPath: e.model}); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	_, err = c.CreateInstance(ctx, llamactl.CreateInstanceRequest{Name: name, ModelPath: e.model})
	apiError(t, "same name", err, 409, "INSTANCE_EXISTS", llamactl.IsConflict)
	_, err = c.StopInstance(ctx, name, llamactl.StopOptions{})
	apiError(t, "stop stopped", err, 409, "INSTANCE_NOT_RUNNING", llamactl.IsConflict)
	if err := c.DeleteInstance(ctx, name); err != nil {
		t.Fatalf("DeleteInstance: %v", err)
	}
}

func TestErrorsOfTheSecuredServer(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)

	// No retries: the 429 below is what is tested (a retry would wait out its Retry-After).
	anonymous := llamactl.NewClient(e.secured.url, llamactl.WithRetry(llamactl.RetryPolicy{}))
	_, err := anonymous.ListInstancesContext(ctx)
	apiError(t, "no token", err, 401, "UNAUTHORIZED", llamactl.IsUnauthorized)
	_, err = llamactl.NewClient(e.secured.url, llamactl.WithToken("forged")).ListInstancesContext(ctx)
	apiError(t, "bad token", err, 401, "UNAUTHORIZED", llamactl.IsUnauthorized)
	_, err = anonymous.Events(ctx)
	apiError(t, "events without a token", err, 401, "UNAUTHORIZED", llamactl.IsUnauthorized)

	viewer := llamactl.NewClient(e.secured.url)
	if _, err := viewer.Login(ctx, viewerName, viewerPassword); err != nil {
		t.Fatalf("Login: %v", err)
	}
	err = viewer.DeleteInstance(ctx, "anything")
	apiError(t, "viewer deletes", err, 403, "FORBIDDEN", llamactl.IsForbidden)
	_, err = viewer.UpdateConfig(ctx, llamactl.Config{"instances": map[string]any{"max_restarts": 1}})
	apiError(t, "viewer configures", err, 403, "FORBIDDEN", llamactl.IsForbidden)

	// intensive_per_minute is 1: a second start-all from the same caller within the minute
	// is refused before anything else is looked at.
	for attempt := 1; ; attempt++ {
		_, err = anonymous.StartAll(ctx)
		if llamactl.IsRateLimited(err) || attempt == 3 {
			break
		}
	}
	limited := apiError(t, "second start-all", err, 429, "RATE_LIMITED", llamactl.IsRateLimited)
	if limited.RetryAfter <= 0 || limited.RetryAfter > time.Minute {
		t.Fatalf("RetryAfter %v, want within a minute", limited.RetryAfter)
	}
	if limited.Header.Get("X-RateLimit-Limit") != "1" {
		t.Fatalf("X-RateLimit-Limit %q", limited.Header.Get("X-RateLimit-Limit"))
	}
}

func TestLoginAndRefresh(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.secured.url)

	_, err := c.Login(ctx, viewerName, "wrong password")
	apiError(t, "wrong password", err, 401, "INVALID_CREDENTIALS", llamactl.IsUnauthorized)
	if c.Token() != "" {
		t.Fatal("a failed login left a token")
	}
	token, err := c.Login(ctx, viewerName, viewerPassword)
	if err != nil || token.Token == "" || c.Token() != token.Token || !token.ExpiresAt.After(time.Now()) {
		t.Fatalf("Login: %+v, %v", token, err)
	}
	if _, err := c.ListInstancesContext(ctx); err != nil {
		t.Fatalf("ListInstances with the token: %v", err)
	}
	refreshed, err := c.RefreshToken(ctx)
	if err != nil || refreshed.Token == "" || c.Token() != refreshed.Token ||
		refreshed.ExpiresAt.Before(token.ExpiresAt) {
		t.Fatalf("RefreshToken: %+v, %v", refreshed, err)
	}
	if _, err := c.SystemStatus(ctx); err != nil {
		t.Fatalf("SystemStatus with the refreshed token: %v", err)
	}
	// A token given at construction works the same, events included.
	other := llamactl.NewClient(e.secured.url, llamactl.WithToken(refreshed.Token),
		llamactl.WithUserAgent("go-tests"))
	if _, err := other.ListInstancesContext(ctx); err != nil {
		t.Fatalf("WithToken: %v", err)
	}
	events, err := other.Events(ctx)
	if err != nil {
		t.Fatalf("Events with a token: %v", err)
	}
	events.Close()
}

func TestAPIKeyListsModels(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	keyed := llamactl.NewClient(e.secured.url, llamactl.WithAPIKey(e.apiKey))
	models, err := keyed.ListModels(ctx)
	if err != nil || models == nil {
		t.Fatalf("ListModels with a key: %v, %v", models, err)
	}
	if keyed.OpenAIBaseURL() != e.secured.url+"/v1" {
		t.Fatalf("OpenAIBaseURL %q", keyed.OpenAIBaseURL())
	}
	_, err = llamactl.NewClient(e.secured.url, llamactl.WithAPIKey("llk_forged")).ListModels(ctx)
	apiError(t, "forged key", err, 401, "invalid_api_key", llamactl.IsUnauthorized)
}
