package llamactl

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ActivityPrincipal is who sent a request: Kind "user", "key" or "anonymous".
type ActivityPrincipal struct {
	Kind string  `json:"kind"`
	Name *string `json:"name"`
}

// ActivityRecord is one /v1 or proxy request on record (issue 30). Pointer fields are nil
// where the answer said nothing.
type ActivityRecord struct {
	ID               string            `json:"id"`
	Time             time.Time         `json:"time"`
	Kind             string            `json:"kind"` // "v1" or "proxy"
	Method           string            `json:"method"`
	Endpoint         string            `json:"endpoint"`
	Model            *string           `json:"model"`
	Instance         *string           `json:"instance"`
	Node             *string           `json:"node"`
	Principal        ActivityPrincipal `json:"principal"`
	Status           int               `json:"status"`
	ErrorCode        *string           `json:"error_code"`
	Stream           bool              `json:"stream"`
	Cancelled        bool              `json:"cancelled"`
	PromptTokens     *int              `json:"prompt_tokens"`
	CompletionTokens *int              `json:"completion_tokens"`
	CachedTokens     *int              `json:"cached_tokens"`
	DraftTokens      *int              `json:"draft_tokens"`
	DraftAccepted    *int              `json:"draft_accepted"`
	QueueMs          *float64          `json:"queue_ms"`
	TTFTMs           *float64          `json:"ttft_ms"`
	DurationMs       *float64          `json:"duration_ms"`
	PromptTPS        *float64          `json:"prompt_tps"`
	GenerationTPS    *float64          `json:"generation_tps"`
	Client           *string           `json:"client"`
	UserAgent        *string           `json:"user_agent"`
}

// ActivityPage is one page of ListActivity; Next ("" on the last page) goes in the next
// call's Before.
type ActivityPage struct {
	Items []ActivityRecord `json:"items"`
	Next  string           `json:"next"`
}

// ActivityFilter selects records; zero fields select everything.
type ActivityFilter struct {
	Instance, Model, User, Key string
	Status                     string // a code ("429") or a class ("4xx")
	Since, Until               time.Time
	Limit                      int    // 1 to 1000; 0: the server's 100
	Before                     string // a previous page's Next
}

func (f ActivityFilter) query() url.Values {
	q := url.Values{}
	for name, value := range map[string]string{"instance": f.Instance, "model": f.Model,
		"user": f.User, "key": f.Key, "status": f.Status, "before": f.Before} {
		if value != "" {
			q.Set(name, value)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// ActivityGroup is one group of ActivitySummary.
type ActivityGroup struct {
	Group             *string  `json:"group"`
	Requests          int      `json:"requests"`
	Errors            int      `json:"errors"`
	PromptTokens      int      `json:"prompt_tokens"`
	CompletionTokens  int      `json:"completion_tokens"`
	TTFTMsP50         *float64 `json:"ttft_ms_p50"`
	DurationMsP50     *float64 `json:"duration_ms_p50"`
	DurationMsP95     *float64 `json:"duration_ms_p95"`
	GenerationTPSMean *float64 `json:"generation_tps_mean"`
}

// QuotaUsage is a key's or user's quotas: each window's limit (nil: none), what it holds
// now, and when it frees.
type QuotaUsage struct {
	Limits map[string]*int      `json:"limits"`
	Used   map[string]int       `json:"used"`
	Resets map[string]time.Time `json:"resets"`
}

// ListActivity is one page of the requests on record, newest first. A viewer gets only its
// own requests.
func (c *Client) ListActivity(ctx context.Context, f ActivityFilter) (ActivityPage, error) {
	var out ActivityPage
	var raw struct {
		Items []ActivityRecord `json:"items"`
		Next  *string          `json:"next"`
	}
	r := request{method: http.MethodGet, path: "/api/activity", query: f.query()}
	if err := c.call(ctx, r, &raw); err != nil {
		return out, err
	}
	out.Items = raw.Items
	if raw.Next != nil {
		out.Next = *raw.Next
	}
	return out, nil
}

// ActivitySummary groups the records by "key", "user", "instance" or "model"; Instance,
// Model, User, Key, Since and Until of f apply.
func (c *Client) ActivitySummary(ctx context.Context, by string, f ActivityFilter) ([]ActivityGroup, error) {
	q := f.query()
	q.Del("limit")
	q.Del("before")
	q.Set("by", by)
	out := struct {
		Groups []ActivityGroup `json:"groups"`
	}{Groups: []ActivityGroup{}}
	r := request{method: http.MethodGet, path: "/api/activity/summary", query: q}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Groups, nil
}

// ExportActivity streams the records into w as "csv" (a header row first) or "jsonl"; the
// bytes written.
func (c *Client) ExportActivity(ctx context.Context, w io.Writer, format string, f ActivityFilter) (int64, error) {
	q := f.query()
	q.Del("limit")
	q.Del("before")
	q.Set("format", format)
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/api/activity/export",
		query: q, accept: "*/*"})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}

// KeyUsage is an API key's quota usage (admin only).
func (c *Client) KeyUsage(ctx context.Context, name string) (QuotaUsage, error) {
	var out QuotaUsage
	r := request{method: http.MethodGet, path: "/api/keys/" + url.PathEscape(name) + "/usage"}
	err := c.call(ctx, r, &out)
	return out, err
}

// UnmarshalJSON reads a request_completed event's record into Request, and every other
// type's data into Data (a record's numeric status would not fit Data's).
func (e *Event) UnmarshalJSON(data []byte) error {
	var raw struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	e.Type, e.Timestamp = raw.Type, raw.Timestamp
	if len(raw.Data) == 0 {
		return nil
	}
	if raw.Type == EventRequestCompleted {
		e.Request = &ActivityRecord{}
		return json.Unmarshal(raw.Data, e.Request)
	}
	return json.Unmarshal(raw.Data, &e.Data)
}
