package llamactl

import (
	"context"
	"net/http"
)

// PoolMember is one instance of a replica pool, with its load.
type PoolMember struct {
	Name     string  `json:"name"`
	Status   string  `json:"status"`
	Node     *string `json:"node"`      // the Ray node's id; nil when local
	InFlight int     `json:"in_flight"` // requests it is answering now
	Slots    int     `json:"slots"`     // requests it serves at once
	Sleeping bool    `json:"sleeping"`  // its process runs, its model is unloaded
}

// Pool is a replica pool: instances sharing a pool name, which the /v1 gateway routes to.
type Pool struct {
	Name       string       `json:"name"`
	MinRunning int          `json:"min_running"` // members kept running
	Waiting    int          `json:"waiting"`     // requests waiting for a free slot
	Members    []PoolMember `json:"members"`
}

// ListPools returns the replica pools, their members and the requests waiting for them.
func (c *Client) ListPools(ctx context.Context) ([]Pool, error) {
	out := struct {
		Pools []Pool `json:"pools"`
	}{Pools: []Pool{}}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/pools"}, &out); err != nil {
		return nil, err
	}
	return out.Pools, nil
}
