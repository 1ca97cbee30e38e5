package llamactl

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says which failed calls the Client sends again, and how long it waits first.
// It is the Python client's (and the openai SDK's): a 429 is retried whatever the method
// (the server refused before doing anything); a lost connection and a 502, 503 or 504 only
// for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE), since a POST may have been done.
// The wait is the answer's Retry-After when it says at most MaxRetryAfter, else InitialDelay
// doubling with each retry up to MaxDelay, less up to a quarter at random (so that many
// clients refused at once do not all come back at once).
type RetryPolicy struct {
	MaxRetries    int           // retries after the first try; 0 retries nothing
	InitialDelay  time.Duration // the first backoff; 0 means 500ms
	MaxDelay      time.Duration // the longest backoff; 0 means 8s
	MaxRetryAfter time.Duration // the longest Retry-After obeyed; 0 means a minute
}

// DefaultRetryPolicy is what a Client uses unless WithRetry says otherwise: two retries.
var DefaultRetryPolicy = RetryPolicy{
	MaxRetries: 2, InitialDelay: 500 * time.Millisecond, MaxDelay: 8 * time.Second,
	MaxRetryAfter: time.Minute,
}

// WithRetry replaces DefaultRetryPolicy; WithRetry(RetryPolicy{}) turns retries off.
func WithRetry(policy RetryPolicy) Option {
	return func(c *Client) { c.retry = &policy }
}

func (c *Client) retryPolicy() RetryPolicy {
	p := DefaultRetryPolicy
	if c.retry != nil {
		p = *c.retry
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = DefaultRetryPolicy.InitialDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultRetryPolicy.MaxDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultRetryPolicy.MaxRetryAfter
	}
	return p
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// delay is how long to wait before retrying after the attempt-th try (0-based) of method,
// which answered resp or failed with err; false not to retry.
func (p RetryPolicy) delay(method string, attempt int, resp *http.Response, err error) (time.Duration, bool) {
	if attempt >= p.MaxRetries {
		return 0, false
	}
	if err != nil || resp.StatusCode == http.StatusBadGateway ||
		resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout {
		if !idempotent(method) {
			return 0, false
		}
	} else if resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if resp != nil {
		if said, ok := retryAfterSeconds(resp.Header.Get("Retry-After")); ok && said <= p.MaxRetryAfter {
			return said, true
		}
	}
	backoff := p.InitialDelay << attempt
	if backoff > p.MaxDelay || backoff <= 0 {
		backoff = p.MaxDelay
	}
	return time.Duration(float64(backoff) * (1 - 0.25*rand.Float64())), true
}

// retryAfterSeconds reads a Retry-After in delay-seconds, 0 included (an HTTP date counts
// as absent here: parseRetryAfter reads those for APIError.RetryAfter).
func retryAfterSeconds(value string) (time.Duration, bool) {
	seconds, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || seconds < 0 {
		if when, err := http.ParseTime(value); err == nil {
			return max(time.Until(when), 0), true
		}
		return 0, false
	}
	return time.Duration(seconds * float64(time.Second)), true
}

// retryable reports whether a failed request may be tried again: not when the caller's
// context ended (that is the caller's decision, not a lost connection).
func retryable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded)
}

// discard reads what is left of an answer not used (so its connection can be reused).
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
}

// sleep waits d, or less when ctx ends first (then it returns ctx's error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
