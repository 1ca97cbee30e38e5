// Package llamactl is a client for the llamactl REST API: instances of llama.cpp's
// llama-server (create, start, stop, health, logs), batch operations, system status,
// configuration, authentication and the event stream. It uses the standard library only.
//
// The API reference's two lines work as they are:
//
//	client := llamactl.NewClient("http://localhost:8080")
//	instances, err := client.ListInstances()
//
// ListInstances is the one call with a context-free form, kept for that snippet; it is
// ListInstancesContext(context.Background()). Every other operation takes a
// context.Context first, which bounds the whole call (including a start with Wait, or a
// stream):
//
//	ctx := context.Background()
//	inst, err := client.CreateInstance(ctx, llamactl.CreateInstanceRequest{
//		Name:      "example",
//		ModelPath: "/models/example.gguf",
//		Options:   llamactl.Options{"context_size": 2048},
//	})
//	_, err = client.StartInstance(ctx, "example", llamactl.StartOptions{Wait: true})
//
// Every answer of the server that is an error (4xx or 5xx) is an *APIError; IsNotFound,
// IsConflict, IsBadRequest, IsUnauthorized, IsForbidden and IsRateLimited tell them apart,
// as do errors.Is with ErrNotFound and its siblings. Failures to reach the server are the
// net/http errors, unchanged.
//
// A Client is safe for concurrent use. Login and RefreshToken keep the token they get, and
// every later request sends it.
package llamactl
