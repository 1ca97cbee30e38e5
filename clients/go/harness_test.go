package llamactl_test

// The tests run against real llamactl servers that TestMain starts, each with a temporary
// config and data dir, and stops at the end (which stops their instances):
//
//   - open: auth off, rate limits off;
//   - secured: auth on with a viewer and an admin, rate limits on with
//     intensive_per_minute: 1, and an inference API key;
//   - shortLived: auth on with tokens valid for shortTokenTTL seconds, for the refresh.
//
// They need, from the environment (scripts/test sets them):
//
//	LLAMACTL_BIN          the llamactl command
//	LLAMA_SERVER_BIN      a llama-server (else one on PATH)
//	LLAMACTL_TEST_MODEL   a GGUF model, or LLAMACTL_PYTHON (default: the python beside
//	                      LLAMACTL_BIN) to write the tiny one with llamactl.devtools.tiny_model
//
// Without them the server tests skip, unless CI is set: then their absence is a failure.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Named timeouts.
const (
	serverStartTimeout = 30 * time.Second
	serverStopTimeout  = 30 * time.Second
	commandTimeout     = 2 * time.Minute
	callTimeout        = 60 * time.Second // one test's calls, starts with Wait included
)

// Ports: llamactl servers in 35000-35099, instances in blocks of 10 in 35100-35999.
const (
	serverPortLow, serverPortHigh = 35000, 35099
	instancePortLow               = 35100
	instancePortBlocks            = 90
	instancePortBlock             = 10
)

const (
	viewerName     = "viewer"
	viewerPassword = "viewer-password-for-go-tests"
	adminName      = "admin"
	adminPassword  = "admin-password-for-go-tests"
	// shortTokenTTL is the shortLived server's token lifetime in seconds: long enough for a
	// call to finish with one token, short enough for a test to outlive a few.
	shortTokenTTL = 4
)

// testEnv is what TestMain prepared for the tests; nil when they skip.
type testEnv struct {
	dir     string // everything the tests write; every process they start names it
	model   string
	open    *server
	secured *server
	// shortLived has auth on and tokens that expire after shortTokenTTL seconds.
	shortLived *server
	apiKey     string // an inference key of the secured server
}

type server struct {
	url      string
	cmd      *exec.Cmd
	log      string
	exited   chan struct{}
	stopOnce sync.Once
}

var (
	env        *testEnv
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tools, missing := findTools()
	if missing != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "llamactl Go tests: %s (CI is set, so this is a failure)\n", missing)
			return 1
		}
		skipReason = missing + ": the tests against a real llamactl skip (scripts/test sets these)"
		fmt.Fprintln(os.Stderr, "llamactl Go tests:", skipReason)
		return m.Run()
	}
	e, err := setUp(tools)
	if err != nil {
		fmt.Fprintln(os.Stderr, "llamactl Go tests: setting up:", err)
		if e != nil {
			e.tearDown()
		}
		return 1
	}
	env = e
	code := m.Run()
	if err := e.tearDown(); err != nil {
		fmt.Fprintln(os.Stderr, "llamactl Go tests: tearing down:", err)
		code = 1
	}
	return code
}

type tools struct {
	llamactl, llamaServer, model, python string
}

// findTools reads the environment; missing says what is absent.
func findTools() (tools, string) {
	t := tools{
		llamactl:    os.Getenv("LLAMACTL_BIN"),
		llamaServer: os.Getenv("LLAMA_SERVER_BIN"),
		model:       os.Getenv("LLAMACTL_TEST_MODEL"),
		python:      os.Getenv("LLAMACTL_PYTHON"),
	}
	if t.llamactl == "" {
		return t, "LLAMACTL_BIN is not set"
	}
	if t.llamaServer == "" {
		path, err := exec.LookPath("llama-server")
		if err != nil {
			return t, "LLAMA_SERVER_BIN is not set and no llama-server is on PATH"
		}
		t.llamaServer = path
	}
	if t.model == "" && t.python == "" {
		beside := filepath.Join(filepath.Dir(t.llamactl), "python")
		if _, err := os.Stat(beside); err != nil {
			return t, "neither LLAMACTL_TEST_MODEL nor LLAMACTL_PYTHON is set"
		}
		t.python = beside
	}
	return t, ""
}

func setUp(t tools) (*testEnv, error) {
	dir, err := os.MkdirTemp("", "llamactl-go-test-")
	if err != nil {
		return nil, err
	}
	e := &testEnv{dir: dir, model: filepath.Join(dir, "tiny.gguf")}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Add(4)
	go func() { // the model: linked or written under dir, so backends' command lines name dir
		defer wg.Done()
		if t.model != "" {
			errs[0] = os.Symlink(t.model, e.model)
			return
		}
		_, errs[0] = runCommand(t.python, "", "-m", "llamactl.devtools.tiny_model", e.model)
	}()
	ports := newPortPicker()
	go func() {
		defer wg.Done()
		e.open, errs[1] = startServer(t, dir, "open", ports, nil, nil)
	}()
	go func() {
		defer wg.Done()
		auth := map[string]any{"enabled": true}
		limits := map[string]any{"enabled": true, "intensive_per_minute": 1}
		e.secured, errs[2] = startServer(t, dir, "secured", ports, map[string]any{
			"auth": auth, "rate_limit": limits,
		}, func(config, data string) error {
			if err := addUser(t, config, viewerName, "viewer", viewerPassword); err != nil {
				return err
			}
			if err := addUser(t, config, adminName, "admin", adminPassword); err != nil {
				return err
			}
			out, err := runCommand(t.llamactl, "", "keys", "create", "go-tests",
				"--config", config, "--data-dir", data)
			e.apiKey = regexp.MustCompile(`llk_[A-Za-z0-9_-]+`).FindString(out)
			if err == nil && e.apiKey == "" {
				err = fmt.Errorf("no key in the output of keys create: %q", out)
			}
			return err
		})
	}()
	go func() {
		defer wg.Done()
		auth := map[string]any{"enabled": true, "token_ttl": shortTokenTTL}
		e.shortLived, errs[3] = startServer(t, dir, "short-lived", ports, map[string]any{
			"auth": auth,
		}, func(config, _ string) error {
			return addUser(t, config, viewerName, "viewer", viewerPassword)
		})
	}()
	wg.Wait()
	return e, errors.Join(errs...)
}

// addUser adds a user to a config file with `llamactl users add`.
func addUser(t tools, config, name, role, password string) error {
	_, err := runCommand(t.llamactl, password, "users", "add", name, "--role", role,
		"--password-stdin", "--config", config)
	return err
}

// runCommand runs a command to its end with stdin, and returns its standard output.
func runCommand(name, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// portPicker hands out ports that are free now and were not handed out before.
type portPicker struct {
	mu    sync.Mutex
	taken map[int]bool
	next  int
}

func newPortPicker() *portPicker {
	return &portPicker{taken: map[int]bool{}, next: os.Getpid()}
}

func bindable(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (p *portPicker) server() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := serverPortHigh - serverPortLow + 1
	for i := 0; i < n; i++ {
		port := serverPortLow + (p.next+i)%n
		if !p.taken[port] && bindable(port) {
			p.taken[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d", serverPortLow, serverPortHigh)
}

func (p *portPicker) instances() ([2]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < instancePortBlocks; i++ {
		low := instancePortLow + ((p.next+i)%instancePortBlocks)*instancePortBlock
		free := !p.taken[low]
		for port := low; free && port < low+instancePortBlock; port++ {
			free = bindable(port)
		}
		if free {
			p.taken[low] = true
			return [2]int{low, low + instancePortBlock - 1}, nil
		}
	}
	return [2]int{}, errors.New("no free block of instance ports in 35100-35999")
}

// startServer writes the config (JSON is YAML), lets prepare add to it, and starts
// `llamactl serve`, waiting until it answers.
func startServer(t tools, dir, name string, ports *portPicker, sections map[string]any,
	prepare func(config, data string) error) (*server, error) {
	port, err := ports.server()
	if err != nil {
		return nil, err
	}
	portRange, err := ports.instances()
	if err != nil {
		return nil, err
	}
	doc := map[string]any{
		"backends":   map[string]any{"llama_cpp": map[string]any{"command": t.llamaServer}},
		"instances":  map[string]any{"port_range": portRange},
		"rate_limit": map[string]any{"enabled": false},
	}
	for k, v := range sections {
		doc[k] = v
	}
	config := filepath.Join(dir, name+".yaml")
	data := filepath.Join(dir, name+"-data")
	text, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(config, text, 0o600); err != nil {
		return nil, err
	}
	if prepare != nil {
		if err := prepare(config, data); err != nil {
			return nil, err
		}
	}
	s := &server{url: fmt.Sprintf("http://127.0.0.1:%d", port),
		log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(t.llamactl, "serve", "--port", strconv.Itoa(port),
		"--config", config, "--data-dir", data)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = childProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) waitReady() error {
	deadline := time.Now().Add(serverStartTimeout)
	probe := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("llamactl exited: %s", s.logTail())
		default:
		}
		resp, err := probe.Get(s.url + "/api/instances")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("llamactl at %s not ready in %s: %s", s.url, serverStartTimeout, s.logTail())
}

func (s *server) logTail() string {
	data, _ := os.ReadFile(s.log)
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return string(data)
}

// stop sends SIGTERM (llamactl then stops its instances) and, past serverStopTimeout,
// SIGKILL.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(serverStopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// tearDown stops the servers, then makes sure that no process naming the temporary dir
// (a backend of a test's instance, a command) outlives the tests: any found is killed and
// reported.
func (e *testEnv) tearDown() error {
	var wg sync.WaitGroup
	for _, s := range []*server{e.open, e.secured, e.shortLived} {
		if s != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.stop() }()
		}
	}
	wg.Wait()
	var err error
	if left := processesNaming(e.dir); len(left) > 0 {
		for _, pid := range left {
			if process, err := os.FindProcess(pid); err == nil {
				_ = process.Kill()
			}
		}
		err = fmt.Errorf("processes left behind (killed): %v", left)
	}
	if rmErr := os.RemoveAll(e.dir); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	return err
}

// processesNaming lists the processes whose command line mentions dir (Linux's /proc;
// nothing elsewhere).
func processesNaming(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", entry.Name(), "stat"))
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			continue // a zombie: exited, only its parent's wait is missing
		}
		pids = append(pids, pid)
	}
	return pids
}

// requireEnv skips the test when TestMain found no llamactl to test against.
func requireEnv(t *testing.T) *testEnv {
	t.Helper()
	if env == nil {
		t.Skip(skipReason)
	}
	return env
}

// testContext bounds a test's calls; it ends with the test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}
