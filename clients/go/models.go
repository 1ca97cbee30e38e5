package llamactl

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// LibraryModel is a GGUF model on the server's disk, as ListLibrary lists it (read from
// its header). Error is set, and most fields nil, for a file that cannot be used.
type LibraryModel struct {
	ID             string          `json:"id"`
	Path           string          `json:"path"`
	Size           int64           `json:"size"`
	Architecture   *string         `json:"architecture"`
	Parameters     *int64          `json:"parameters"`
	Quantization   *string         `json:"quantization"`
	ContextLength  *int            `json:"context_length"`
	ChatTemplate   bool            `json:"chat_template"`
	Split          *ModelSplit     `json:"split"`
	MMProj         bool            `json:"mmproj"` // a multimodal projector, not a model
	Source         *ModelSource    `json:"source"` // where it was pulled from; nil if not
	MemoryEstimate *MemoryEstimate `json:"memory_estimate"`
	Instances      []string        `json:"instances"`
	Error          *string         `json:"error"`
	Deletable      bool            `json:"deletable"` // inside models.dir: DeleteModel may remove it
}

// ModelSplit says which part of a split model (name-00001-of-00003.gguf) Path is.
type ModelSplit struct {
	Part  int `json:"part"`
	Count int `json:"count"`
}

// ModelSource is the Hub repo, file and commit a model was pulled from.
type ModelSource struct {
	Repo     string  `json:"repo"`
	File     string  `json:"file"`
	Revision string  `json:"revision"`
	SHA256   *string `json:"sha256"`
}

// PullRequest is what PullModel asks for: Source ("<user>/<repo>[:<quant>]", llama.cpp's
// -hf shorthand), or Repo with File and Revision.
type PullRequest struct {
	Source     string `json:"source,omitempty"`
	Repo       string `json:"repo,omitempty"`
	File       string `json:"file,omitempty"`
	Revision   string `json:"revision,omitempty"`
	WithMMProj bool   `json:"with_mmproj,omitempty"`
}

// PullJob is a pull from the Hub. Status is queued, downloading, verifying, done, failed
// or cancelled; Model is the new model's id once done.
type PullJob struct {
	ID         string     `json:"id"`
	Source     string     `json:"source"`
	Repo       string     `json:"repo"`
	Revision   string     `json:"revision"`
	Status     string     `json:"status"`
	BytesDone  int64      `json:"bytes_done"`
	BytesTotal int64      `json:"bytes_total"`
	Files      []PullFile `json:"files"`
	Model      *string    `json:"model"`
	Error      *string    `json:"error"`
	CreatedAt  string     `json:"created_at"`
}

// PullFile is one file of a pull.
type PullFile struct {
	File       string `json:"file"`
	Path       string `json:"path"`
	BytesDone  int64  `json:"bytes_done"`
	BytesTotal int64  `json:"bytes_total"`
	Status     string `json:"status"`
}

// Finished reports whether the pull has ended (done, failed or cancelled).
func (j PullJob) Finished() bool {
	return j.Status == "done" || j.Status == "failed" || j.Status == "cancelled"
}

// ListLibrary lists the GGUF models on the server's disk (GET /api/models; ListModels is
// /v1's list of instances).
func (c *Client) ListLibrary(ctx context.Context) ([]LibraryModel, error) {
	out := struct {
		Models []LibraryModel `json:"models"`
	}{Models: []LibraryModel{}}
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/models"}, &out)
	return out.Models, err
}

// PullModel starts a pull from the Hugging Face Hub (operator): the answer comes at once,
// the download goes on (GetPull follows it). A disk too small is INSUFFICIENT_STORAGE (507).
func (c *Client) PullModel(ctx context.Context, req PullRequest) (*PullJob, error) {
	var out PullJob
	r := request{method: http.MethodPost, path: "/api/models/pull", body: req}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetPull returns one pull.
func (c *Client) GetPull(ctx context.Context, id string) (*PullJob, error) {
	var out PullJob
	r := request{method: http.MethodGet, path: "/api/models/pulls/" + url.PathEscape(id)}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPulls lists the pulls of the server: running, and the last ones finished.
func (c *Client) ListPulls(ctx context.Context) ([]PullJob, error) {
	out := struct {
		Pulls []PullJob `json:"pulls"`
	}{Pulls: []PullJob{}}
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/models/pulls"}, &out)
	return out.Pulls, err
}

// CancelPull cancels a pull (operator); its partial files stay, and pulling again resumes.
func (c *Client) CancelPull(ctx context.Context, id string) (*PullJob, error) {
	var out PullJob
	r := request{method: http.MethodDelete, path: "/api/models/pulls/" + url.PathEscape(id)}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteModel deletes a model of the server's library (admin): MODEL_IN_USE while an
// instance uses it, FORBIDDEN for a file outside models.dir.
func (c *Client) DeleteModel(ctx context.Context, id string) error {
	parts := strings.Split(id, "/")
	for i, part := range parts {
		parts[i] = url.PathEscape(part)
	}
	r := request{method: http.MethodDelete, path: "/api/models/" + strings.Join(parts, "/")}
	return c.call(ctx, r, nil)
}

// CreateInstanceFromModel creates a stopped instance of a library model (its id) or of
// "<user>/<repo>:<quant>", which the server pulls first when it is not on disk (the
// instance's Pull says how far it is). req.ModelPath must be empty.
func (c *Client) CreateInstanceFromModel(ctx context.Context, model string, req CreateInstanceRequest) (*Instance, error) {
	body := struct {
		CreateInstanceRequest
		ModelPath *string `json:"model_path,omitempty"`
		Model     string  `json:"model"`
	}{CreateInstanceRequest: req, Model: model}
	var out InstanceCreated
	err := c.call(ctx, request{method: http.MethodPost, path: "/api/instances", body: body}, &out)
	if err != nil {
		return nil, err
	}
	return &out.Instance, nil
}
