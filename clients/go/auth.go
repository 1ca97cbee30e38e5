package llamactl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// A token is refreshed when less than a tenth of its lifetime or 5 minutes remain, whichever
// is more, but never in the first half of its life (as the Python client does).
const (
	refreshFraction = 0.1
	refreshMargin   = 5 * time.Minute
	// The server truncates iat and exp to whole seconds: a token may live up to a second
	// less than exp - iat says.
	claimRounding = time.Second
)

// credentials are what Login was given, kept to sign in again when a refresh is refused.
type credentials struct {
	username, password string
}

// tokenTimes says when the kept token should be refreshed, on this process's clock.
type tokenTimes struct {
	expires  time.Time // monotonic: now + the token's lifetime when it was received
	lifetime time.Duration
}

// timesOf reads a fresh token's lifetime from its claims (exp - iat, so that a server whose
// clock differs from ours does not matter), else from expiresAt against our clock.
func timesOf(token string, expiresAt time.Time, now time.Time) tokenTimes {
	lifetime := expiresAt.Sub(now)
	if exp, iat, ok := jwtTimes(token); ok && exp > iat {
		lifetime = time.Duration(exp-iat)*time.Second - claimRounding
	}
	if lifetime <= 0 {
		return tokenTimes{}
	}
	return tokenTimes{expires: now.Add(lifetime), lifetime: lifetime}
}

// jwtTimes are the unverified exp and iat of a JWT (only the server can verify it; the
// client only reads the times).
func jwtTimes(token string) (exp, iat int64, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, 0, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, 0, false
	}
	var claims struct {
		Exp float64 `json:"exp"`
		Iat float64 `json:"iat"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return 0, 0, false
	}
	return int64(claims.Exp), int64(claims.Iat), true
}

// due reports whether the token should be refreshed now.
func (t tokenTimes) due(now time.Time) bool {
	if t.lifetime <= 0 {
		return false
	}
	window := min(max(time.Duration(float64(t.lifetime)*refreshFraction), refreshMargin), t.lifetime/2)
	return t.expires.Sub(now) < window
}

// Login exchanges a user's name and password for a token, which the client keeps and sends
// from then on. Wrong credentials are an unauthorized error (INVALID_CREDENTIALS). The
// client refreshes the token before it expires (POST /api/auth/refresh, as RefreshToken),
// and signs in again with the same credentials when a refresh is refused (say, after the
// machine slept past the expiry); SetToken ends that.
func (c *Client) Login(ctx context.Context, username, password string) (*Token, error) {
	token, err := c.login(ctx, credentials{username, password})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.creds = &credentials{username, password}
	c.mu.Unlock()
	return token, nil
}

func (c *Client) login(ctx context.Context, creds credentials) (*Token, error) {
	body := map[string]string{"username": creds.username, "password": creds.password}
	return c.keepToken(ctx, request{method: http.MethodPost, path: "/api/auth/login", body: body,
		noAuth: true})
}

// RefreshToken exchanges the client's still valid token for a new one, and keeps it.
func (c *Client) RefreshToken(ctx context.Context) (*Token, error) {
	return c.keepToken(ctx, request{method: http.MethodPost, path: "/api/auth/refresh", noAuth: true})
}

func (c *Client) keepToken(ctx context.Context, r request) (*Token, error) {
	var out Token
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	times := timesOf(out.Token, out.ExpiresAt, time.Now())
	c.mu.Lock()
	c.token, c.times = out.Token, times
	c.mu.Unlock()
	return &out, nil
}

// refreshIfDue refreshes a token that Login got when it is near its expiry, or signs in
// again when the refresh is refused. Failures are left for the request itself to report.
func (c *Client) refreshIfDue(ctx context.Context) {
	c.mu.RLock()
	signedIn, due := c.creds != nil, c.times.due(time.Now())
	c.mu.RUnlock()
	if !signedIn || !due {
		return
	}
	c.refreshing.Lock() // one refresh at a time; the others then find a fresh token
	defer c.refreshing.Unlock()
	c.mu.RLock()
	creds, due := c.creds, c.times.due(time.Now())
	c.mu.RUnlock()
	if creds == nil || !due {
		return
	}
	if _, err := c.RefreshToken(ctx); IsUnauthorized(err) {
		_ = c.signInAgain(ctx, c.Token())
	}
}

// signInAgain logs in with the kept credentials, unless another goroutine already replaced
// the refused token; false when there are no credentials or the login failed.
func (c *Client) signInAgain(ctx context.Context, refused string) bool {
	c.mu.RLock()
	creds, current := c.creds, c.token
	c.mu.RUnlock()
	if creds == nil {
		return false
	}
	if current != refused {
		return true
	}
	_, err := c.login(ctx, *creds)
	return err == nil
}
