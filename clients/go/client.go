package llamactl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Version is this client's version, sent in the default User-Agent.
const Version = "0.1.0"

// DefaultUserAgent is the User-Agent header sent unless WithUserAgent sets another.
const DefaultUserAgent = "llamactl-go/" + Version

// maxErrorBody bounds how much of an error answer is read (a proxy may send a whole page).
const maxErrorBody = 64 << 10

// Client talks to one llamactl server. Create it with NewClient; it is safe for concurrent
// use.
type Client struct {
	base      *url.URL // the server's root: the API is under /api, the gateway under /v1
	baseErr   error    // why the base URL given to NewClient is unusable, returned by calls
	http      *http.Client
	userAgent string
	apiKey    string

	retry *RetryPolicy // nil: DefaultRetryPolicy

	mu    sync.RWMutex
	token string
	creds *credentials // set by Login: the token is then refreshed before it expires
	times tokenTimes   // when the token Login or RefreshToken got is due for a refresh

	refreshing sync.Mutex // held while a refresh or a new sign-in is under way
}

// Option configures a Client in NewClient.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc (proxies, transports, TLS).
// The default is a client without a timeout: pass contexts with deadlines to bound calls,
// since streams and starts with Wait may rightly take long (hc.Timeout would cut those too).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithToken sets the JWT sent as "Authorization: Bearer" with every /api request, as Login
// would.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithAPIKey sets an inference API key ("llk_...", made with `llamactl keys create`) for the
// OpenAI-compatible gateway under /v1 (ListModels, OpenAIBaseURL). The /api routes do not
// take API keys: they need a user's token (Login or WithToken).
func WithAPIKey(key string) Option {
	return func(c *Client) { c.apiKey = key }
}

// WithUserAgent replaces DefaultUserAgent.
func WithUserAgent(userAgent string) Option {
	return func(c *Client) { c.userAgent = userAgent }
}

// NewClient returns a client of the llamactl server at baseURL: "http://localhost:8080",
// the API's own base "http://localhost:8080/api", or just "localhost:8080" all work. A
// baseURL that is not an http(s) URL makes every call fail with the reason.
func NewClient(baseURL string, opts ...Option) *Client {
	c := &Client{http: &http.Client{}, userAgent: DefaultUserAgent}
	c.base, c.baseErr = normalizeBaseURL(baseURL)
	for _, opt := range opts {
		opt(c)
	}
	return c
}

func normalizeBaseURL(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	s = strings.TrimRight(s, "/")
	s = strings.TrimSuffix(s, "/api")
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("llamactl: bad base URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("llamactl: base URL %q is not an http(s) URL", raw)
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// BaseURL is the server's root URL, as normalized by NewClient (without /api).
func (c *Client) BaseURL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

// OpenAIBaseURL is the server's OpenAI-compatible gateway ("<root>/v1"), for OpenAI client
// libraries; authenticate them with the API key, or with a user's token.
func (c *Client) OpenAIBaseURL() string {
	return c.BaseURL() + "/v1"
}

// Token is the JWT the client currently sends ("" for none).
func (c *Client) Token() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token
}

// SetToken replaces the JWT the client sends ("" sends none). The client no longer
// refreshes it, nor signs in again with what Login was given.
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token, c.creds, c.times = token, nil, tokenTimes{}
}

// request describes one call: what to send, and where to decode the answer.
type request struct {
	method string
	path   string // from the root, escaped, e.g. "/api/instances"
	query  url.Values
	body   any    // JSON-encoded when not nil
	accept string // "" for application/json
	bearer string // "" for the client's token
	noAuth bool   // login and refresh: no refresh first, no new sign-in on a 401
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	if c.base == nil { // a zero-value Client: an error, not a nil dereference
		return nil, ErrNoBaseURL
	}
	target := c.base.String() + r.path // r.path is escaped already (instancePath)
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		data, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("llamactl: encoding the %s %s body: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	userAgent := c.userAgent
	if userAgent == "" {
		userAgent = DefaultUserAgent
	}
	req.Header.Set("User-Agent", userAgent)
	bearer := r.bearer
	if bearer == "" {
		bearer = c.Token()
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return req, nil
}

// send makes the call and returns the answer when it is a success; an error answer becomes
// an *APIError (its body read and closed). It refreshes a token that is due first, retries
// as the RetryPolicy allows, and signs in again once when a token Login got is refused.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	if !r.noAuth && r.bearer == "" {
		c.refreshIfDue(ctx)
	}
	hc := c.http
	if hc == nil {
		hc = http.DefaultClient
	}
	policy := c.retryPolicy()
	signedInAgain := false
	for attempt := 0; ; attempt++ {
		req, err := c.newRequest(ctx, r) // anew each time: a body is read by the sending
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err == nil && resp.StatusCode == http.StatusUnauthorized && !signedInAgain &&
			c.mayRenewFor(r) && c.renew(ctx, bearerOf(req)) {
			discard(resp)
			signedInAgain, attempt = true, attempt-1 // a new sign-in is not a retry
			continue
		}
		wait, again := policy.delay(r.method, attempt, resp, err)
		if again && (err == nil || retryable(ctx, err)) {
			if resp != nil {
				discard(resp)
			}
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 400 {
			defer resp.Body.Close()
			return nil, newAPIError(resp)
		}
		return resp, nil
	}
}

// mayRenewFor reports whether a 401 to r may be answered by signing in again.
func (c *Client) mayRenewFor(r request) bool {
	if r.noAuth || r.bearer != "" {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.creds != nil
}

// renew signs in again after refused was refused; true when there is a new token to try.
func (c *Client) renew(ctx context.Context, refused string) bool {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	return c.signInAgain(ctx, refused)
}

func bearerOf(req *http.Request) string {
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
}

// call makes the call and decodes a successful JSON answer into out (nil: discarded).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	decoder := json.NewDecoder(resp.Body)
	decoder.UseNumber() // Options keep integers: {"threads": 4} is json.Number("4"), not 4.0
	if err := decoder.Decode(out); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("llamactl: %s %s: unexpected answer: %w", r.method, r.path, err)
	}
	return nil
}

// instancePath is "/api/instances/NAME/SUFFIX..." with NAME as one path segment.
func instancePath(name string, suffix ...string) string {
	// Names are [A-Za-z0-9._-] on the server; escape anyway, so that a bad name reaches
	// the server whole and is refused there (404) instead of naming another route.
	p := "/api/instances/" + url.PathEscape(name)
	for _, s := range suffix {
		p += "/" + s
	}
	return p
}
