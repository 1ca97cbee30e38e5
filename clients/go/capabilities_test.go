package llamactl_test

import (
	"slices"
	"testing"

	llamactl "llamactl.dev/client/go"
)

// Issue 31: /v1/models says what each instance can do, and GetInstance says it too.
func TestModelsCarryContextLengthAndCapabilities(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.open.url)
	const name = "go-embedder"
	t.Cleanup(func() { removeInstance(c, name) })
	if _, err := c.CreateInstance(ctx, llamactl.CreateInstanceRequest{Name: name, ModelPath: e.model,
		Options: llamactl.Options{"embedding": true, "context_size": 512}}); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	models, err := c.ListModels(ctx)
	if err != nil {
		t.Fatalf("ListModels: %v", err)
	}
	index := slices.IndexFunc(models, func(m llamactl.Model) bool { return m.ID == name })
	if index < 0 {
		t.Fatalf("%s not in %v", name, models)
	}
	model := models[index]
	if model.ContextLength == nil || *model.ContextLength != 512 {
		t.Fatalf("context_length %v", model.ContextLength)
	}
	if !slices.Equal(model.Capabilities, []string{llamactl.CapabilityEmbedding}) ||
		!model.HasCapability(llamactl.CapabilityEmbedding) || model.HasCapability(llamactl.CapabilityChat) {
		t.Fatalf("capabilities %v", model.Capabilities)
	}
	instance, err := c.GetInstance(ctx, name)
	if err != nil {
		t.Fatalf("GetInstance: %v", err)
	}
	if instance.ContextLength == nil || *instance.ContextLength != 512 ||
		!slices.Equal(instance.Capabilities, model.Capabilities) {
		t.Fatalf("instance: %v %v", instance.ContextLength, instance.Capabilities)
	}
}
