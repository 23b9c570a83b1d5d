package api

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// Spec is the OpenAPI document of the API, served at /openapi.yaml. The
// tests validate every request and response against it, and check that it
// and the routes describe the same operations.
//
//go:embed openapi.yaml
var Spec []byte

// loadSpec parses and validates the embedded document. A broken document
// fails New, so it fails every test rather than reaching a user.
func loadSpec() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(Spec)
	if err != nil {
		return nil, fmt.Errorf("api: openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api: openapi.yaml is invalid: %w", err)
	}
	return doc, nil
}

func (s *Server) docsRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/openapi.yaml", Handler: s.openapi, Public: true},
		{Method: http.MethodGet, Path: "/docs", Handler: s.docs, Public: true},
	}
}

func (s *Server) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", Spec)
}

// docs serves a page rendered from the spec on the server, with no script
// and nothing fetched from elsewhere: it must work on an office network
// that reaches nothing but this service.
func (s *Server) docs(c echo.Context) error {
	c.Response().Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	return c.HTMLBlob(http.StatusOK, s.docsHTML)
}

type docsPage struct {
	Title, Version string
	Description    string
	Operations     []docsOperation
	Schemas        []docsSchema
}

type docsOperation struct {
	Method, Path, ID, Summary, Description string
	Public                                 bool
	Params                                 []docsParam
	Body                                   string
	Responses                              []docsResponse
}

type docsParam struct {
	Name, In, Type, Description string
	Required                    bool
}

type docsResponse struct{ Status, Description, Schema string }

type docsSchema struct {
	Name, Description string
	Fields            []docsParam
}

func renderDocs(doc *openapi3.T) ([]byte, error) {
	page := docsPage{Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description}
	paths := doc.Paths.Map()
	keys := make([]string, 0, len(paths))
	for p := range paths {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	for _, p := range keys {
		item := paths[p]
		ops := item.Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		for _, m := range methods {
			op := ops[m]
			d := docsOperation{
				Method: m, Path: p, ID: op.OperationID, Summary: op.Summary, Description: op.Description,
				Public: op.Security != nil && len(*op.Security) == 0,
			}
			for _, pr := range append(slices.Clone(item.Parameters), op.Parameters...) {
				v := pr.Value
				d.Params = append(d.Params, docsParam{Name: v.Name, In: v.In, Type: schemaName(v.Schema), Description: v.Description, Required: v.Required})
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for mt, c := range op.RequestBody.Value.Content {
					d.Body = mt + ": " + schemaName(c.Schema)
				}
			}
			resps := op.Responses.Map()
			statuses := make([]string, 0, len(resps))
			for st := range resps {
				statuses = append(statuses, st)
			}
			slices.Sort(statuses)
			for _, st := range statuses {
				r := resps[st].Value
				desc, schema := "", ""
				if r.Description != nil {
					desc = *r.Description
				}
				for mt, c := range r.Content {
					schema = mt + ": " + schemaName(c.Schema)
				}
				d.Responses = append(d.Responses, docsResponse{Status: st, Description: desc, Schema: schema})
			}
			page.Operations = append(page.Operations, d)
		}
	}
	names := make([]string, 0, len(doc.Components.Schemas))
	for n := range doc.Components.Schemas {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		sc := doc.Components.Schemas[n].Value
		ds := docsSchema{Name: n, Description: sc.Description}
		props := make([]string, 0, len(sc.Properties))
		for p := range sc.Properties {
			props = append(props, p)
		}
		slices.Sort(props)
		for _, p := range props {
			ps := sc.Properties[p]
			ds.Fields = append(ds.Fields, docsParam{
				Name: p, Type: schemaName(ps), Description: ps.Value.Description, Required: slices.Contains(sc.Required, p),
			})
		}
		page.Schemas = append(page.Schemas, ds)
	}
	var buf bytes.Buffer
	if err := docsTemplate.Execute(&buf, page); err != nil {
		return nil, fmt.Errorf("api: render docs: %w", err)
	}
	return buf.Bytes(), nil
}

// schemaName describes a schema in a few words: its component name, or its
// type with its enum or item type.
func schemaName(ref *openapi3.SchemaRef) string {
	if ref == nil || ref.Value == nil {
		return ""
	}
	if ref.Ref != "" {
		return strings.TrimPrefix(ref.Ref, "#/components/schemas/")
	}
	v := ref.Value
	t := strings.Join(v.Type.Slice(), "|")
	switch {
	case len(v.Enum) > 0:
		vals := make([]string, len(v.Enum))
		for i, e := range v.Enum {
			vals[i] = fmt.Sprint(e)
		}
		return t + " (" + strings.Join(vals, ", ") + ")"
	case v.Items != nil:
		return "array of " + schemaName(v.Items)
	case v.Format != "":
		return t + " (" + v.Format + ")"
	}
	return t
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}} API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4;padding:.1em .3em}
pre{padding:1em;white-space:pre-wrap}
.op{border-top:1px solid #ddd;padding:.5em 0}
.m{display:inline-block;min-width:4em;font-weight:bold}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
</style></head><body>
<h1>{{.Title}} API, version {{.Version}}</h1>
<p>The machine-readable document is <a href="/openapi.yaml">/openapi.yaml</a>.</p>
<pre>{{.Description}}</pre>
<h2>Operations</h2>
<ul>{{range .Operations}}<li><a href="#{{.ID}}"><span class="m">{{.Method}}</span> {{.Path}}</a> — {{.Summary}}</li>{{end}}</ul>
{{range .Operations}}<div class="op" id="{{.ID}}">
<h3><span class="m">{{.Method}}</span> <code>{{.Path}}</code></h3>
<p><b>{{.Summary}}</b>{{if .Public}} (no authentication){{end}}</p>
{{if .Description}}<p>{{.Description}}</p>{{end}}
{{if .Params}}<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th></th></tr>
{{range .Params}}<tr><td><code>{{.Name}}</code></td><td>{{.In}}</td><td>{{.Type}}</td><td>{{if .Required}}yes{{end}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Body}}<p>Body: <code>{{.Body}}</code></p>{{end}}
<table><tr><th>status</th><th></th><th>body</th></tr>
{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}</td><td><code>{{.Schema}}</code></td></tr>{{end}}</table>
</div>{{end}}
<h2>Schemas</h2>
{{range .Schemas}}<div class="op" id="schema-{{.Name}}"><h3>{{.Name}}</h3>{{if .Description}}<p>{{.Description}}</p>{{end}}
{{if .Fields}}<table><tr><th>field</th><th>type</th><th>required</th><th></th></tr>
{{range .Fields}}<tr><td><code>{{.Name}}</code></td><td>{{.Type}}</td><td>{{if .Required}}yes{{end}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
</div>{{end}}
</body></html>
`))
