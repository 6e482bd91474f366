// Package apidocs describes the served API to people and their tools: the
// OpenAPI 3.1 document of what this server serves now (GET /openapi.json), built
// from the models' own metadata so that each model's /predict body lists its
// features with their types, and the interactive /docs page (Swagger UI, embedded
// from its pinned npm release, so nothing is fetched from a CDN at run time).
package apidocs

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// Server is what the document says about the server as a whole.
type Server struct {
	// Version is the server's version (info.version).
	Version string
	// PredictModel is the model POST /predict serves; "" when there is none (several
	// models and no default), and then /predict is left out.
	PredictModel string
	// APIKeys: inference and model metadata need a key (the bearer and X-API-Key
	// schemes are declared and required on those paths).
	APIKeys bool
}

// Model is one served model as the document describes it.
type Model struct {
	Name     string
	Versions []string
	Meta     model.Metadata
	// Features are the columns a feature object (/predict, KServe v1 instances)
	// carries, in order; nil when the model takes none.
	Features []Feature
	// Monitored: the model has drift monitoring and takes feedback
	// (GET .../monitoring, POST .../feedback).
	Monitored bool
}

// Feature is one column of a feature object.
type Feature struct {
	Name string
	Kind FeatureKind
}

// FeatureKind is what values a feature takes.
type FeatureKind uint8

const (
	Number FeatureKind = iota // a number; null for missing
	Text                      // a string; null for missing
	Any                       // ignored by the model: any value
)

// obj is a JSON object in the order we build it (encoding/json sorts map keys,
// which keeps the document byte-stable between runs).
type obj = map[string]any

// Document is the OpenAPI 3.1 document of srv serving models.
func Document(srv Server, models []Model) ([]byte, error) {
	models = append([]Model(nil), models...)
	sort.Slice(models, func(i, j int) bool { return models[i].Name < models[j].Name })
	paths := obj{
		"/v2":              obj{"get": op("Server metadata", "server", nil, resp200("ServerMetadata"))},
		"/v2/health/live":  obj{"get": op("Liveness", "server", nil, resp200("Live"))},
		"/v2/health/ready": obj{"get": op("Readiness: 200 when the models are loaded and the server is not draining", "server", nil, withErrors(resp200("Ready"), 503))},
	}
	schemas := baseSchemas()
	secured := func(o obj) obj {
		if srv.APIKeys {
			o["security"] = []any{obj{"bearer": []any{}}, obj{"apiKey": []any{}}}
			o["responses"].(obj)["401"] = errResponse("missing or wrong API key")
		}
		return o
	}
	for _, m := range models {
		tag := "model " + m.Name
		inputs := fmt.Sprintf("%sInferenceRequest", schemaName(m.Name))
		schemas[inputs] = inferRequestSchema(m)
		paths["/v2/models/"+m.Name] = obj{"get": secured(op("Metadata of model "+m.Name, tag, nil, withErrors(resp200("ModelMetadata"), 404, 503)))}
		paths["/v2/models/"+m.Name+"/ready"] = obj{"get": secured(op("Readiness of model "+m.Name, tag, nil, withErrors(resp200("Ready"), 404, 503)))}
		paths["/v2/models/"+m.Name+"/infer"] = obj{"post": secured(op("Run model "+m.Name+" (Open Inference Protocol v2)", tag,
			body(ref(inputs), inferExample(m)), withErrors(resp200("InferenceResponse"), 400, 404, 413, 422, 429, 503, 504)))}
		if m.Monitored {
			paths["/v2/models/"+m.Name+"/monitoring"] = obj{"get": secured(op("Drift and rolling quality of model "+m.Name+" (docs/monitoring.md)", tag, nil,
				withErrors(resp200("Monitoring"), 404)))}
			paths["/v2/models/"+m.Name+"/feedback"] = obj{"post": secured(op("Ground truth for earlier predictions of model "+m.Name+", by request id", tag,
				body(obj{"oneOf": []any{ref("FeedbackItem"), obj{"type": "array", "maxItems": 10000, "items": ref("FeedbackItem")}}},
					[]any{obj{"id": "the X-Request-Id of a prediction", "label": 1}}),
				withErrors(resp200("FeedbackAnswer"), 400, 404, 413)))}
		}
		if len(m.Features) == 0 {
			continue
		}
		row := fmt.Sprintf("%sRow", schemaName(m.Name))
		schemas[row] = rowSchema(m)
		paths["/v1/models/"+m.Name+":predict"] = obj{"post": secured(op("Run model "+m.Name+" on rows (KServe v1)", tag,
			body(obj{"type": "object", "required": []any{"instances"}, "properties": obj{
				"instances": obj{"type": "array", "minItems": 1, "items": ref(row)}}}, obj{"instances": []any{rowExample(m)}}),
			withErrors(resp200("V1Response"), 400, 404, 413, 422, 429, 503, 504)))}
		if m.Name == srv.PredictModel {
			paths["/predict"] = obj{"post": secured(op("Predict with "+m.Name+": one feature object, or a list of them (the tutorial's API)", tag,
				body(obj{"oneOf": []any{ref(row), obj{"type": "array", "minItems": 1, "items": ref(row)}}}, rowExample(m)),
				withErrors(resp200("Prediction"), 400, 404, 413, 422, 429, 503, 504)))}
		}
	}
	doc := obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":   "Tide",
			"version": srv.Version,
			"description": "The models this server serves now, over the tutorial's /predict, the Open Inference Protocol v2 " +
				"(REST; gRPC is on its own port) and KServe v1. Generated from the models' metadata: it changes when models are loaded or unloaded.",
		},
		"paths":      paths,
		"components": obj{"schemas": schemas},
	}
	if srv.APIKeys {
		doc["components"].(obj)["securitySchemes"] = obj{
			"bearer": obj{"type": "http", "scheme": "bearer", "description": "an API key as a bearer token"},
			"apiKey": obj{"type": "apiKey", "in": "header", "name": "X-API-Key"},
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

// schemaName makes a model name usable as a component name (^[a-zA-Z0-9.\-_]+$).
func schemaName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func op(summary, tag string, requestBody obj, responses obj) obj {
	o := obj{"summary": summary, "tags": []any{tag}, "responses": responses}
	if requestBody != nil {
		o["requestBody"] = requestBody
	}
	return o
}

func body(schema obj, example any) obj {
	return obj{"required": true, "content": obj{"application/json": obj{"schema": schema, "example": example}}}
}

func resp200(schema string) obj {
	return obj{"200": obj{"description": "OK", "content": obj{"application/json": obj{"schema": ref(schema)}}}}
}

// errorMeaning is what each error status means on Tide's inference paths.
var errorMeaning = map[int]string{
	400: "the body is not parsable",
	404: "no such model or version",
	413: "the body is larger than the server allows",
	422: "the input is parsable but wrong for the model (names, types, shapes, unknown categories)",
	429: "overloaded: the model's run slots and queue are full; retry after Retry-After",
	503: "not ready: the model is loading, failed to load, or the server is draining",
	504: "the request's deadline passed before its model run",
}

func withErrors(responses obj, statuses ...int) obj {
	for _, s := range statuses {
		responses[fmt.Sprint(s)] = errResponse(errorMeaning[s])
	}
	return responses
}

func errResponse(desc string) obj {
	return obj{"description": desc, "content": obj{"application/json": obj{"schema": ref("Error")}}}
}

// valueSchema is the JSON schema of one element of a tensor of datatype dt.
func valueSchema(dt tensor.Datatype) obj {
	switch dt {
	case tensor.Bool:
		return obj{"type": "boolean"}
	case tensor.Bytes:
		return obj{"type": []any{"string", "null"}}
	case tensor.FP16, tensor.FP32, tensor.FP64, tensor.BF16:
		return obj{"type": []any{"number", "null"}} // null is NaN: a missing value
	}
	return obj{"type": "integer"}
}

// inferRequestSchema is the OIP request for one model: its inputs by name, each
// with its datatype and the element schema.
func inferRequestSchema(m Model) obj {
	var inputs []any
	for _, in := range m.Meta.Inputs {
		dt := obj{"const": in.Datatype.String()}
		data := obj{"type": "array", "items": obj{"anyOf": []any{valueSchema(in.Datatype), obj{"type": "array"}}}}
		if in.Unused {
			dt = obj{"type": "string", "description": "any datatype: the model ignores this input"}
			data = obj{"type": "array"}
		}
		inputs = append(inputs, obj{
			"type":     "object",
			"required": []any{"name", "shape", "datatype", "data"},
			"properties": obj{
				"name":       obj{"const": in.Name},
				"shape":      obj{"type": "array", "items": obj{"type": "integer", "minimum": 0}, "description": fmt.Sprintf("the model's shape is %v (-1: any)", in.Shape)},
				"datatype":   dt,
				"data":       data,
				"parameters": obj{"type": "object"},
			},
		})
	}
	return obj{
		"type":     "object",
		"required": []any{"inputs"},
		"properties": obj{
			"id":         obj{"type": "string", "description": "echoed in the answer; the request id (X-Request-Id) when not given"},
			"parameters": obj{"type": "object"},
			"inputs":     obj{"type": "array", "minItems": 1, "items": obj{"oneOf": inputs}},
			"outputs": obj{"type": "array", "items": obj{"type": "object", "required": []any{"name"}, "properties": obj{
				"name": obj{"enum": specNames(m.Meta.Outputs)}, "parameters": obj{"type": "object"}}}},
		},
	}
}

func specNames(specs []model.TensorSpec) []any {
	out := make([]any, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// rowSchema is one feature object: every feature required, with its type.
func rowSchema(m Model) obj {
	props := obj{}
	var required []any
	for _, f := range m.Features {
		switch f.Kind {
		case Text:
			props[f.Name] = obj{"type": []any{"string", "null"}}
		case Any:
			props[f.Name] = obj{"description": "ignored by the model: any value"}
		default:
			props[f.Name] = obj{"type": []any{"number", "null"}, "description": "null is a missing value (NaN)"}
		}
		required = append(required, f.Name)
	}
	return obj{"type": "object", "required": required, "properties": props}
}

// rowExample is a feature object the page fills in for "Try it out".
func rowExample(m Model) obj {
	ex := obj{}
	for i, f := range m.Features {
		switch f.Kind {
		case Text:
			ex[f.Name] = nil // a string column's category is the user's to pick; null is always accepted
		case Any:
			ex[f.Name] = nil
		default:
			ex[f.Name] = 0.5 * float64(i%3)
		}
	}
	return ex
}

// inferExample is an OIP request for one row (or one element along the batch
// dimension) that the model accepts as it stands.
func inferExample(m Model) obj {
	var inputs []any
	for _, in := range m.Meta.Inputs {
		shape := make([]any, len(in.Shape))
		n := 1
		for i, d := range in.Shape {
			if d < 0 {
				d = 1
			}
			shape[i] = d
			n *= int(d)
		}
		data := make([]any, n)
		for i := range data {
			switch in.Datatype {
			case tensor.Bytes:
				data[i] = nil
			case tensor.Bool:
				data[i] = false
			case tensor.FP16, tensor.FP32, tensor.FP64, tensor.BF16:
				data[i] = 0.5 * float64(i%3)
			default:
				data[i] = 0
			}
		}
		dt := in.Datatype
		if in.Unused {
			dt = tensor.FP64
			for i := range data {
				data[i] = 0.0
			}
		}
		inputs = append(inputs, obj{"name": in.Name, "shape": shape, "datatype": dt.String(), "data": data})
	}
	return obj{"inputs": inputs}
}

// baseSchemas are the protocol's own shapes, the same for every model.
func baseSchemas() obj {
	str := obj{"type": "string"}
	tensorMeta := obj{"type": "object", "required": []any{"name", "datatype", "shape"}, "properties": obj{
		"name": str, "datatype": str, "shape": obj{"type": "array", "items": obj{"type": "integer"}}, "parameters": obj{"type": "object"}}}
	return obj{
		"FeedbackItem": obj{"type": "object", "required": []any{"id"}, "properties": obj{
			"id":    obj{"type": "string", "description": "the prediction's request id (X-Request-Id, or the OIP id)"},
			"row":   obj{"type": "integer", "minimum": 0, "description": "the row within a multi-row request (default 0)"},
			"label": obj{"type": []any{"string", "number"}, "description": "a classifier's true class"},
			"value": obj{"type": "number", "description": "a regressor's true value"}}},
		"FeedbackAnswer": obj{"type": "object", "required": []any{"results", "counts"}, "properties": obj{
			"results": obj{"type": "array", "items": obj{"type": "object", "required": []any{"id", "status"}, "properties": obj{
				"id": str, "row": obj{"type": "integer"}, "error": str,
				"status": obj{"enum": []any{"ok", "unknown", "expired", "duplicate", "invalid"}}}}},
			"counts": obj{"type": "object", "additionalProperties": obj{"type": "integer"}}}},
		"Monitoring": obj{"type": "object", "required": []any{"model", "versions"}, "properties": obj{
			"model": str, "versions": obj{"type": "array", "items": obj{"type": "object"}},
			"feedback": obj{"type": "object", "properties": obj{"kept_rows": obj{"type": "integer"}}}}},
		"Error":          obj{"type": "object", "required": []any{"error"}, "properties": obj{"error": obj{"type": "string", "description": "one line that says what was wrong"}}},
		"Live":           obj{"type": "object", "properties": obj{"live": obj{"type": "boolean"}}},
		"Ready":          obj{"type": "object", "properties": obj{"ready": obj{"type": "boolean"}, "name": str}},
		"ServerMetadata": obj{"type": "object", "required": []any{"name", "version", "extensions"}, "properties": obj{"name": str, "version": str, "extensions": obj{"type": "array", "items": str}}},
		"TensorMetadata": tensorMeta,
		"ModelMetadata": obj{"type": "object", "required": []any{"name", "platform", "inputs", "outputs"}, "properties": obj{
			"name": str, "versions": obj{"type": "array", "items": str}, "platform": str,
			"inputs": obj{"type": "array", "items": ref("TensorMetadata")}, "outputs": obj{"type": "array", "items": ref("TensorMetadata")},
			"parameters": obj{"type": "object"}}},
		"InferenceResponse": obj{"type": "object", "required": []any{"model_name", "outputs"}, "properties": obj{
			"model_name": str, "model_version": str, "id": str, "parameters": obj{"type": "object"},
			"outputs": obj{"type": "array", "items": obj{"type": "object", "required": []any{"name", "datatype", "shape"}, "properties": obj{
				"name": str, "datatype": str, "shape": obj{"type": "array", "items": obj{"type": "integer"}},
				"data": obj{"type": "array"}, "parameters": obj{"type": "object"}}}}}},
		"Prediction": obj{"type": "object", "required": []any{"prediction"}, "properties": obj{
			"prediction": obj{"type": "array", "description": "one prediction per feature object, as the model's predict returns it"}}},
		"V1Response": obj{"type": "object", "required": []any{"predictions"}, "properties": obj{"predictions": obj{"type": "array"}}},
	}
}
