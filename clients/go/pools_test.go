package llamactl_test

import (
	"testing"

	llamactl "llamactl.dev/client/go"
)

func TestPoolsListTheirMembers(t *testing.T) {
	e := requireEnv(t)
	ctx := testContext(t)
	c := llamactl.NewClient(e.open.url)
	const name = "go-pool-member"
	t.Cleanup(func() { removeInstance(c, name) })
	pool := "go-pool"
	inst, err := c.CreateInstance(ctx, llamactl.CreateInstanceRequest{
		Name: name, ModelPath: e.model, Pool: &pool,
		Options: llamactl.Options{"threads": 1, "context_size": 512},
	})
	if err != nil || inst.Pool == nil || *inst.Pool != pool {
		t.Fatalf("CreateInstance with a pool: %+v, %v", inst, err)
	}
	pools, err := c.ListPools(ctx)
	if err != nil {
		t.Fatalf("ListPools: %v", err)
	}
	var found *llamactl.Pool
	for i := range pools {
		if pools[i].Name == pool {
			found = &pools[i]
		}
	}
	if found == nil || len(found.Members) != 1 || found.Members[0].Name != name ||
		found.Members[0].Status != "stopped" || found.Members[0].Slots != 4 ||
		found.Members[0].Node != nil || found.Members[0].Sleeping {
		t.Fatalf("ListPools: %+v", pools)
	}
	if _, err := c.CreateInstance(ctx, llamactl.CreateInstanceRequest{
		Name: pool, ModelPath: e.model}); !llamactl.IsConflict(err) {
		t.Fatalf("an instance named as a pool: %v, want a conflict", err)
	}
}
