package llamactl_test

import (
	"testing"

	llamactl "llamactl.dev/client/go"
)

// The model library's calls against a real server (the Hub is not reached: the refusals
// come before it, and the open server's library is empty).
func TestModelLibraryCalls(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.open.url)
	models, err := c.ListLibrary(ctx)
	if err != nil || models == nil {
		t.Fatalf("ListLibrary: %v, %v", models, err)
	}
	pulls, err := c.ListPulls(ctx)
	if err != nil || len(pulls) != 0 {
		t.Fatalf("ListPulls: %v, %v", pulls, err)
	}
	_, err = c.PullModel(ctx, llamactl.PullRequest{Source: "not a repo"})
	apiError(t, "a bad source", err, 400, llamactl.CodeValidationError, llamactl.IsBadRequest)
	_, err = c.GetPull(ctx, "nope")
	apiError(t, "an unknown pull", err, 404, llamactl.CodePullNotFound, llamactl.IsNotFound)
	_, err = c.CancelPull(ctx, "nope")
	apiError(t, "cancel an unknown pull", err, 404, llamactl.CodePullNotFound, llamactl.IsNotFound)
	err = c.DeleteModel(ctx, "some/repo/nope.gguf")
	apiError(t, "an unknown model", err, 404, llamactl.CodeNotFound, llamactl.IsNotFound)
	_, err = c.CreateInstanceFromModel(ctx, "nope.gguf", llamactl.CreateInstanceRequest{Name: "go-model"})
	apiError(t, "an instance of no model", err, 400, llamactl.CodeModelNotFound, llamactl.IsBadRequest)
}
