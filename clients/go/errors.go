package llamactl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinels for errors.Is: an *APIError matches the one of its HTTP status.
var (
	ErrBadRequest   = errors.New("llamactl: bad request")
	ErrUnauthorized = errors.New("llamactl: unauthorized")
	ErrForbidden    = errors.New("llamactl: forbidden")
	ErrNotFound     = errors.New("llamactl: not found")
	ErrConflict     = errors.New("llamactl: conflict")
	ErrRateLimited  = errors.New("llamactl: rate limited")
	// ErrServer matches every 5xx answer (START_FAILED, STORAGE_UNAVAILABLE, a proxy's 502...).
	ErrServer = errors.New("llamactl: server error")
	// ErrNoBaseURL is what calls on a Client not made by NewClient return (never a panic).
	ErrNoBaseURL = errors.New("llamactl: the Client has no base URL: create it with NewClient")
)

// The contract's error codes (APIError.Code), to compare with rather than spell out.
const (
	CodeValidationError     = "VALIDATION_ERROR"
	CodeInvalidJSON         = "INVALID_JSON"
	CodeModelNotFound       = "MODEL_NOT_FOUND"
	CodeUnauthorized        = "UNAUTHORIZED"
	CodeTokenExpired        = "TOKEN_EXPIRED"
	CodeInvalidCredentials  = "INVALID_CREDENTIALS"
	CodeForbidden           = "FORBIDDEN"
	CodeNotFound            = "NOT_FOUND"
	CodeInstanceNotFound    = "INSTANCE_NOT_FOUND"
	CodeInstanceExists      = "INSTANCE_EXISTS"
	CodeInstanceRunning     = "INSTANCE_RUNNING"
	CodeInstanceNotRunning  = "INSTANCE_NOT_RUNNING"
	CodePortConflict        = "PORT_CONFLICT"
	CodeRateLimited         = "RATE_LIMITED"
	CodeStartFailed         = "START_FAILED"
	CodeStorageUnavailable  = "STORAGE_UNAVAILABLE"
	CodeInternalError       = "INTERNAL_ERROR"
	CodeInstanceAlreadyRuns = "INSTANCE_ALREADY_RUNNING"
	CodeKeyExists           = "KEY_EXISTS"
	CodeKeyNotFound         = "KEY_NOT_FOUND"
	CodeModelInUse          = "MODEL_IN_USE"         // DeleteModel: an instance uses it
	CodeModelPulling        = "MODEL_PULLING"        // a start while its model is pulled
	CodePullNotFound        = "PULL_NOT_FOUND"       // GetPull, CancelPull
	CodeInsufficientStorage = "INSUFFICIENT_STORAGE" // PullModel: the files would not fit
	CodeHubUnavailable      = "HUB_UNAVAILABLE"      // PullModel: the Hub did not answer
)

// APIError is an error answer of the server: every 4xx and 5xx, in the contract's shape
// {"error", "code", "details"} (or, from the /v1 gateway, OpenAI's {"error": {"message",
// "code"}}). Answers in neither shape, say an HTML page from a proxy, get Code "HTTP_<status>"
// and the start of the body in Details.
type APIError struct {
	StatusCode int    // the HTTP status
	Code       string // e.g. INSTANCE_NOT_FOUND, VALIDATION_ERROR, RATE_LIMITED
	Message    string // the server's "error"
	// Details is the server's "details": a string (the offending field for validation
	// errors, the backend's last log lines for START_FAILED) or nil.
	Details any
	// RetryAfter is how long to wait before trying again, from the Retry-After header of a
	// 429 (or a 503 from the gateway); zero when absent.
	RetryAfter time.Duration
	// Header holds the answer's headers (X-RateLimit-Remaining, ...).
	Header http.Header
}

// Error is "llamactl: <status> <code>: <message>", with the details after a colon.
func (e *APIError) Error() string {
	msg := fmt.Sprintf("llamactl: %d %s: %s", e.StatusCode, e.Code, e.Message)
	if s := e.DetailsString(); s != "" {
		msg += ": " + s
	}
	return msg
}

// DetailsString is Details as text: itself when a string, else its JSON ("" when nil).
func (e *APIError) DetailsString() string {
	switch d := e.Details.(type) {
	case nil:
		return ""
	case string:
		return d
	default:
		data, err := json.Marshal(d)
		if err != nil {
			return fmt.Sprint(d)
		}
		return string(data)
	}
}

// Is reports whether target is the sentinel of e's status (ErrNotFound for a 404, ...).
func (e *APIError) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusBadRequest:
		return target == ErrBadRequest
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusForbidden:
		return target == ErrForbidden
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusTooManyRequests:
		return target == ErrRateLimited
	}
	return e.StatusCode >= 500 && target == ErrServer
}

// IsServerError reports whether err is a 5xx answer.
func IsServerError(err error) bool { return errors.Is(err, ErrServer) }

// IsBadRequest reports whether err is a 400 answer (VALIDATION_ERROR, INVALID_JSON,
// MODEL_NOT_FOUND).
func IsBadRequest(err error) bool { return errors.Is(err, ErrBadRequest) }

// IsUnauthorized reports whether err is a 401 answer: no token, a bad or expired one
// (TOKEN_EXPIRED), or wrong credentials at login (INVALID_CREDENTIALS).
func IsUnauthorized(err error) bool { return errors.Is(err, ErrUnauthorized) }

// IsForbidden reports whether err is a 403 answer: the caller's role is too low.
func IsForbidden(err error) bool { return errors.Is(err, ErrForbidden) }

// IsNotFound reports whether err is a 404 answer (INSTANCE_NOT_FOUND, NOT_FOUND).
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err is a 409 answer (INSTANCE_EXISTS, PORT_CONFLICT,
// INSTANCE_RUNNING, INSTANCE_ALREADY_RUNNING, INSTANCE_NOT_RUNNING, ...).
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsRateLimited reports whether err is a 429 answer; its *APIError has RetryAfter.
func IsRateLimited(err error) bool { return errors.Is(err, ErrRateLimited) }

// newAPIError reads an error answer (the caller closes the body).
func newAPIError(resp *http.Response) *APIError {
	e := &APIError{
		StatusCode: resp.StatusCode,
		Header:     resp.Header,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if !e.parseContract(body) && !e.parseOpenAI(body) {
		e.Code = fmt.Sprintf("HTTP_%d", resp.StatusCode)
		e.Message = strings.TrimSpace(fmt.Sprintf("HTTP %d %s", resp.StatusCode,
			http.StatusText(resp.StatusCode)))
		if text := strings.TrimSpace(string(body)); text != "" {
			if len(text) > 500 {
				text = text[:500]
			}
			e.Details = text
		}
	}
	return e
}

// parseContract reads {"error": "...", "code": "...", "details": ...}.
func (e *APIError) parseContract(body []byte) bool {
	var v struct {
		Error   string `json:"error"`
		Code    string `json:"code"`
		Details any    `json:"details"`
	}
	if json.Unmarshal(body, &v) != nil || v.Code == "" {
		return false
	}
	e.Code, e.Message, e.Details = v.Code, v.Error, v.Details
	return true
}

// parseOpenAI reads the gateway's {"error": {"message": "...", "type": "...", "code": ...}}.
func (e *APIError) parseOpenAI(body []byte) bool {
	var v struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error.Message == "" {
		return false
	}
	e.Message = v.Error.Message
	if code, ok := v.Error.Code.(string); ok && code != "" {
		e.Code = code
	} else {
		e.Code = v.Error.Type
	}
	return true
}

// parseRetryAfter reads delay-seconds or an HTTP date; zero when absent or unreadable.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseFloat(value, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		return time.Duration(seconds * float64(time.Second))
	}
	if when, err := http.ParseTime(value); err == nil && when.After(now) {
		return when.Sub(now)
	}
	return 0
}
