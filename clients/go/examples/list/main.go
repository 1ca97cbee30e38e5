// Command list prints the instances of a llamactl server: the API reference's Go snippet
// as a program. The server's URL is the first argument (default http://localhost:8080);
// LLAMACTL_TOKEN, when set, is sent as the bearer token.
package main

import (
	"fmt"
	"os"

	llamactl "llamactl.dev/client/go"
)

func main() {
	baseURL := "http://localhost:8080"
	if len(os.Args) > 1 {
		baseURL = os.Args[1]
	}
	client := llamactl.NewClient(baseURL, llamactl.WithToken(os.Getenv("LLAMACTL_TOKEN")))
	instances, err := client.ListInstances()
	if err != nil {
		fmt.Fprintln(os.Stderr, "list:", err)
		os.Exit(1)
	}
	for _, inst := range instances {
		pid := "-"
		if inst.PID != nil {
			pid = fmt.Sprint(*inst.PID)
		}
		fmt.Printf("%-24s %-10s port %-5d pid %s\n", inst.Name, inst.Status, inst.Port, pid)
	}
}
