package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	projectv1 "example.com/mesh/examples/go/gen/mesh/project/v1"
)

// errorEnvelope is the one JSON body of every failed REST reply.
type errorEnvelope struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

// getProjectREST reads a project through the gateway's REST surface:
// GET /api/v1/projects/{id}, whose body is the Project in proto3 JSON.
func getProjectREST(addr, token, id string, timeout time.Duration) (*projectv1.Project, error) {
	u := "http://" + addr + "/api/v1/projects/" + url.PathEscape(id)
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("REST GET %s: %w", u, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("REST GET %s: reading the reply: %w", u, err)
	}
	if res.StatusCode != http.StatusOK {
		var e errorEnvelope
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			return nil, fmt.Errorf("REST GET %s: HTTP %s: %.200q", u, res.Status, body)
		}
		return nil, fmt.Errorf("REST GET %s: HTTP %s, %s: %s (request id %s)", u, res.Status, e.Error, e.Message, e.RequestID)
	}
	project := &projectv1.Project{}
	// Strict: a field the contract does not know is an error, not silently dropped.
	if err := protojson.Unmarshal(body, project); err != nil {
		return nil, fmt.Errorf("REST GET %s: the reply is not a mesh.project.v1.Project: %w", u, err)
	}
	return project, nil
}
