package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tideserve/tide/internal/queue"
)

// Protocol is the request shape a target speaks, chosen from the URL's path.
type Protocol string

const (
	// ProtocolPredict is the tutorial's POST /predict with {"feature1": 1.0, ...}.
	ProtocolPredict Protocol = "predict"
	// ProtocolOIP is Open Inference Protocol v2 REST: POST /v2/models/{m}/infer.
	ProtocolOIP Protocol = "oip"
	// ProtocolKServeV1 is KServe v1: POST /v1/models/{m}:predict.
	ProtocolKServeV1 Protocol = "kserve-v1"
	// ProtocolRaw is any other URL: the body is sent as given.
	ProtocolRaw Protocol = "raw"
	// ProtocolGRPC is Open Inference Protocol v2 over gRPC: ModelInfer calls,
	// chosen by a grpc:// or grpcs:// URL (see ParseTarget).
	ProtocolGRPC Protocol = "oip-grpc"
)

// Target is a parsed URL: where to send, in which protocol, for which model.
type Target struct {
	URL      *url.URL
	Protocol Protocol
	Model    string // empty for /predict and raw URLs
	Version  string // OIP and gRPC only, when the URL names one
}

// ParseTarget reads a URL and recognises its protocol: from the path for
// http and https, and gRPC for grpc (cleartext) and grpcs (TLS), whose URLs
// name the model as grpc://HOST:PORT/models/NAME[/versions/VERSION].
func ParseTarget(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", raw, err)
	}
	if u.Scheme == "grpc" || u.Scheme == "grpcs" {
		return parseGRPCTarget(raw, u)
	}
	if u.Scheme == "nats" || u.Scheme == "redis" {
		return parseQueueTarget(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Target{}, fmt.Errorf("target %s: scheme must be http, https, grpc, grpcs, nats or redis", queue.RedactURL(u))
	}
	if u.Host == "" {
		return Target{}, fmt.Errorf("target %q: no host", raw)
	}
	t := Target{URL: u, Protocol: ProtocolRaw}
	path := strings.TrimSuffix(u.Path, "/")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case path == "/predict" || strings.HasSuffix(path, "/predict"):
		t.Protocol = ProtocolPredict
	case len(segs) >= 4 && segs[len(segs)-1] == "infer" && segs[len(segs)-4] == "v2" && segs[len(segs)-3] == "models":
		t.Protocol, t.Model = ProtocolOIP, segs[len(segs)-2]
	case len(segs) >= 6 && segs[len(segs)-1] == "infer" && segs[len(segs)-6] == "v2" && segs[len(segs)-5] == "models" && segs[len(segs)-3] == "versions":
		t.Protocol, t.Model, t.Version = ProtocolOIP, segs[len(segs)-4], segs[len(segs)-2]
	case len(segs) >= 3 && segs[len(segs)-3] == "v1" && segs[len(segs)-2] == "models" && strings.HasSuffix(segs[len(segs)-1], ":predict"):
		t.Protocol, t.Model = ProtocolKServeV1, strings.TrimSuffix(segs[len(segs)-1], ":predict")
	}
	return t, nil
}

// grpcURLForm is the shape of a gRPC target, for error messages.
const grpcURLForm = "grpc://HOST:PORT/models/NAME[/versions/VERSION] (grpcs:// for TLS)"

// parseGRPCTarget checks a grpc:// or grpcs:// URL. The port is required for
// grpc (gRPC servers listen on many: tide serve 8081, Triton 8001) and is 443
// when grpcs leaves it out. The URL's host gets the port, so it is the dial
// address as it stands.
func parseGRPCTarget(raw string, u *url.URL) (Target, error) {
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("target %q: %s; want %s", raw, why, grpcURLForm)
	}
	switch {
	case u.Opaque != "" || u.Host == "":
		return bad("no host")
	case u.User != nil:
		return bad("user info is not supported (pass keys with -H)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("a gRPC URL takes no query or fragment")
	}
	if u.Port() == "" {
		if u.Scheme == "grpc" {
			return bad("no port")
		}
		u.Host = net.JoinHostPort(u.Hostname(), "443")
	}
	if _, err := strconv.ParseUint(u.Port(), 10, 16); err != nil || u.Hostname() == "" {
		return bad("host " + strconv.Quote(u.Host) + " is not HOST:PORT")
	}
	segs := strings.Split(strings.TrimPrefix(strings.TrimSuffix(u.Path, "/"), "/"), "/")
	t := Target{URL: u, Protocol: ProtocolGRPC}
	switch {
	case len(segs) == 2 && segs[0] == "models" && segs[1] != "":
		t.Model = segs[1]
	case len(segs) == 4 && segs[0] == "models" && segs[1] != "" && segs[2] == "versions" && segs[3] != "":
		t.Model, t.Version = segs[1], segs[3]
	default:
		return bad("the path must name the model")
	}
	return t, nil
}

// base is the URL's prefix before the protocol's own path, so a server mounted
// under /models/fraud/ still finds its metadata next to the infer endpoint.
func (t Target) base() string {
	u := *t.URL
	u.RawQuery, u.Fragment = "", ""
	p := strings.TrimSuffix(u.Path, "/")
	switch t.Protocol {
	case ProtocolPredict:
		p = strings.TrimSuffix(p, "/predict")
	case ProtocolOIP:
		p = p[:strings.LastIndex(p, "/v2/models/")]
	case ProtocolKServeV1:
		p = p[:strings.LastIndex(p, "/v1/models/")]
	}
	u.Path = p
	return u.String()
}

// ModelMetadata is the part of OIP model metadata a body generator needs.
type ModelMetadata struct {
	Name   string       `json:"name"`
	Inputs []TensorMeta `json:"inputs"`
	// Parameters.Features names the columns, which /predict needs as JSON keys.
	Parameters struct {
		Features []string `json:"features"`
	} `json:"parameters"`
}

// TensorMeta is one input's declared name, datatype and shape (-1 = any).
type TensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// FetchMetadata asks the target's server for its model's OIP metadata
// (GET /v2/models/{m}). For /predict, whose URL names no model, it asks the
// repository index and takes the only model, or the one given as model.
func FetchMetadata(ctx context.Context, client *http.Client, t Target, model string) (*ModelMetadata, error) {
	base := t.base()
	if model == "" {
		model = t.Model
	}
	if model == "" {
		name, err := onlyModel(ctx, client, base)
		if err != nil {
			return nil, err
		}
		model = name
	}
	u := base + "/v2/models/" + url.PathEscape(model)
	if t.Version != "" {
		u += "/versions/" + url.PathEscape(t.Version)
	}
	var md ModelMetadata
	if err := getJSON(ctx, client, http.MethodGet, u, &md); err != nil {
		return nil, fmt.Errorf("model metadata: %w", err)
	}
	if md.Name == "" {
		md.Name = model
	}
	return &md, nil
}

func onlyModel(ctx context.Context, client *http.Client, base string) (string, error) {
	var index []struct {
		Name string `json:"name"`
	}
	if err := getJSON(ctx, client, http.MethodPost, base+"/v2/repository/index", &index); err != nil {
		return "", fmt.Errorf("find the model behind /predict (pass --model to name it): %w", err)
	}
	seen := map[string]bool{}
	var names []string
	for _, m := range index {
		if !seen[m.Name] {
			seen[m.Name] = true
			names = append(names, m.Name)
		}
	}
	if len(names) != 1 {
		return "", fmt.Errorf("the server has %d models (%s): pass --model to say which one /predict serves", len(names), strings.Join(names, ", "))
	}
	return names[0], nil
}

func getJSON(ctx context.Context, client *http.Client, method, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	return nil
}

// TemplateFor writes a body template for the target's protocol with random
// values in every cell of the model's first input: rows rows of the input's
// width. The result goes through ParseTemplate like a user's template, so
// generated and hand-written bodies are rendered the same way.
func TemplateFor(p Protocol, md *ModelMetadata, rows int) (string, error) {
	if rows < 1 {
		return "", fmt.Errorf("rows must be at least 1, got %d", rows)
	}
	if len(md.Inputs) != 1 {
		return "", fmt.Errorf("model %s has %d inputs; generated bodies support one (use --body-file or --template)", md.Name, len(md.Inputs))
	}
	in := md.Inputs[0]
	width, err := rowWidth(in.Shape)
	if err != nil {
		return "", fmt.Errorf("model %s input %s: %w", md.Name, in.Name, err)
	}
	value, err := valueAction(in.Datatype)
	if err != nil {
		return "", fmt.Errorf("model %s input %s: %w", md.Name, in.Name, err)
	}
	var b strings.Builder
	row := func(sep string) {
		for i := 0; i < width; i++ {
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString(value)
		}
	}
	switch p {
	case ProtocolPredict:
		if len(md.Parameters.Features) != width {
			return "", fmt.Errorf("model %s declares %d feature names for %d columns; /predict needs one name per column", md.Name, len(md.Parameters.Features), width)
		}
		one := func() {
			b.WriteByte('{')
			for i, f := range md.Parameters.Features {
				if i > 0 {
					b.WriteByte(',')
				}
				name, _ := json.Marshal(f)
				b.Write(name)
				b.WriteByte(':')
				b.WriteString(value)
			}
			b.WriteByte('}')
		}
		if rows == 1 {
			one()
			break
		}
		b.WriteByte('[')
		for r := 0; r < rows; r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			one()
		}
		b.WriteByte(']')
	case ProtocolOIP, ProtocolGRPC: // gRPC requests are written as OIP JSON, then converted
		name, _ := json.Marshal(in.Name)
		dt, _ := json.Marshal(in.Datatype)
		fmt.Fprintf(&b, `{"inputs":[{"name":%s,"shape":[%d,%d],"datatype":%s,"data":[`, name, rows, width, dt)
		for r := 0; r < rows; r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			row(",")
		}
		b.WriteString("]}]}")
	case ProtocolKServeV1:
		b.WriteString(`{"instances":[`)
		for r := 0; r < rows; r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('[')
			row(",")
			b.WriteByte(']')
		}
		b.WriteString("]}")
	default:
		return "", fmt.Errorf("no body can be generated for a URL that is not /predict, /v2/models/{m}/infer or /v1/models/{m}:predict (use --body-file or --template)")
	}
	return b.String(), nil
}

// rowWidth is the number of values in one row: the product of the shape's
// dimensions after the batch dimension, all of which must be known.
func rowWidth(shape []int64) (int, error) {
	if len(shape) == 0 {
		return 1, nil
	}
	w := int64(1)
	for _, d := range shape[1:] {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a variable dimension after the batch one; give a body", shape)
		}
		w *= d
		if w > 1<<20 {
			return 0, fmt.Errorf("shape %v is too wide to generate", shape)
		}
	}
	return int(w), nil
}

func valueAction(datatype string) (string, error) {
	switch datatype {
	case "FP16", "FP32", "FP64", "BF16":
		return "{{rand -3 3}}", nil
	case "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64":
		return "{{randint 0 9}}", nil
	case "BOOL":
		return "{{choice true false}}", nil
	}
	return "", fmt.Errorf("datatype %q cannot be generated; give a body", datatype)
}
