package llamactl_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	llamactl "llamactl.dev/client/go"
)

func TestKeysCreateListRevoke(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	admin := llamactl.NewClient(e.secured.url)
	if _, err := admin.Login(ctx, adminName, adminPassword); err != nil {
		t.Fatalf("Login: %v", err)
	}
	const name = "go-keys"
	expires := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	created, err := admin.CreateKey(ctx, llamactl.CreateKeyRequest{Name: name, ExpiresAt: &expires})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	info := created.Info
	if !strings.HasPrefix(created.Key, "llk_") || !strings.HasPrefix(created.Key, info.Prefix) ||
		info.Name != name || info.Instances != nil || info.ExpiresAt == nil ||
		!info.ExpiresAt.Equal(expires) || info.CreatedAt.IsZero() || info.LastUsedAt != nil {
		t.Fatalf("CreateKey: %+v", created)
	}
	keyed := llamactl.NewClient(e.secured.url, llamactl.WithAPIKey(created.Key))
	if _, err := keyed.ListModels(ctx); err != nil {
		t.Fatalf("ListModels with the new key: %v", err)
	}
	keys, err := admin.ListKeys(ctx)
	if err != nil || !slices.ContainsFunc(keys, func(k llamactl.APIKey) bool { return k.Name == name && k.ID == info.ID }) {
		t.Fatalf("ListKeys: %+v, %v", keys, err)
	}
	_, err = admin.CreateKey(ctx, llamactl.CreateKeyRequest{Name: name})
	apiError(t, "the same name", err, 409, llamactl.CodeKeyExists, llamactl.IsConflict)
	past := time.Now().Add(-time.Hour)
	_, err = admin.CreateKey(ctx, llamactl.CreateKeyRequest{Name: "go-keys-past", ExpiresAt: &past})
	apiError(t, "expired", err, 400, "VALIDATION_ERROR", llamactl.IsBadRequest)
	limited, err := admin.CreateKey(ctx, llamactl.CreateKeyRequest{Name: "go-keys-none", Instances: []string{}})
	if err != nil || limited.Info.Instances == nil || len(limited.Info.Instances) != 0 {
		t.Fatalf("CreateKey with no instances: %+v, %v", limited, err)
	}
	t.Cleanup(func() { _ = admin.RevokeKey(ctx, "go-keys-none") })

	if err := admin.RevokeKey(ctx, name); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	_, err = keyed.ListModels(ctx)
	apiError(t, "a revoked key", err, 401, "invalid_api_key", llamactl.IsUnauthorized)
	keys, err = admin.ListKeys(ctx)
	if err != nil || slices.ContainsFunc(keys, func(k llamactl.APIKey) bool { return k.Name == name }) {
		t.Fatalf("ListKeys after the revocation: %+v, %v", keys, err)
	}
	apiError(t, "revoke again", admin.RevokeKey(ctx, name), 404, llamactl.CodeKeyNotFound, llamactl.IsNotFound)

	viewer := llamactl.NewClient(e.secured.url)
	if _, err := viewer.Login(ctx, viewerName, viewerPassword); err != nil {
		t.Fatalf("Login: %v", err)
	}
	_, err = viewer.ListKeys(ctx)
	apiError(t, "a viewer lists keys", err, 403, "FORBIDDEN", llamactl.IsForbidden)
}

func TestTheTokenOfALoginIsRefreshedBeforeItExpires(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.shortLived.url)
	first, err := c.Login(ctx, viewerName, viewerPassword)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	// Past half the token's life it is due: the next call refreshes it first.
	time.Sleep(shortTokenTTL*time.Second/2 + 500*time.Millisecond)
	if _, err := c.ListInstancesContext(ctx); err != nil {
		t.Fatalf("ListInstances past half the token's life: %v", err)
	}
	second := c.Token()
	if second == first.Token {
		t.Fatal("the token was not refreshed")
	}
	// Past the expiry of every token so far (say, a machine that slept): the refresh is
	// refused, and the client signs in again with what Login was given.
	time.Sleep((shortTokenTTL + 1) * time.Second)
	stale := llamactl.NewClient(e.shortLived.url, llamactl.WithToken(second))
	_, err = stale.ListInstancesContext(ctx)
	apiError(t, "an expired token", err, 401, llamactl.CodeTokenExpired, llamactl.IsUnauthorized)
	if _, err := c.ListInstancesContext(ctx); err != nil {
		t.Fatalf("ListInstances after the expiry: %v", err)
	}
	if c.Token() == second {
		t.Fatal("no new token after the expiry")
	}
	// A token handed in is not the client's to renew: SetToken ends the refreshing.
	c.SetToken(second)
	_, err = c.ListInstancesContext(ctx)
	apiError(t, "SetToken", err, 401, llamactl.CodeTokenExpired, llamactl.IsUnauthorized)
}
