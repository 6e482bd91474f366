package server

import (
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	protov2 "google.golang.org/protobuf/proto"

	"github.com/tideserve/tide/internal/oip"
)

// A request message that is not valid protobuf is the caller's fault, so it must be
// INVALID_ARGUMENT, as malformed JSON is 400 over REST. grpc-go answers a codec's
// Unmarshal error with INTERNAL before any handler or interceptor runs, so the
// codec below does not fail: it leaves the message empty and notes why, and the
// interceptors (which see the same message) answer INVALID_ARGUMENT before the
// handler runs. Every noted message is taken out again on the same call, so the
// note set stays as small as the calls in flight.
type lenientCodec struct {
	base    encoding.CodecV2
	invalid sync.Map // message (pointer) → its unmarshal error
}

func newLenientCodec() *lenientCodec {
	return &lenientCodec{base: encoding.GetCodecV2(proto.Name)}
}

func (c *lenientCodec) Name() string { return proto.Name }

// Marshal encodes into a buffer from gRPC's pool, which gRPC frees (and so
// returns to the pool) once the message is written. An answer the handler
// encoded already (encodedAnswer) goes as it is.
func (c *lenientCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *encodedAnswer:
		return mem.BufferSlice(m[:]), nil
	case protov2.Message:
		buf, err := marshalPooled(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{buf}, nil
	}
	return c.base.Marshal(v)
}

// encodedAnswer is a response encoded by its handler, so that the memory the
// message was made in can be used again before gRPC sends it.
type encodedAnswer [1]mem.Buffer

func encodeAnswer(v any) (*encodedAnswer, error) {
	m, ok := v.(protov2.Message)
	if !ok {
		return nil, fmt.Errorf("answer %T is not a protobuf message", v)
	}
	buf, err := marshalPooled(m)
	if err != nil {
		return nil, err
	}
	return &encodedAnswer{buf}, nil
}

// marshalPooled encodes m into a buffer from gRPC's pool. gRPC's own codec
// allocates a new slice for a message under mem's pooling threshold (1 KiB),
// as most answers are, and boxes it; a buffer asked for at least
// pooledMarshalSize is over the threshold, so it is pooled whatever the
// message's size.
func marshalPooled(m protov2.Message) (mem.Buffer, error) {
	// UseCachedSize needs the Size call just before, on the same message.
	size := protov2.Size(m)
	pool := mem.DefaultBufferPool()
	buf := pool.Get(max(size, pooledMarshalSize))
	out, err := protov2.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], m)
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	*buf = out
	return mem.NewBuffer(buf, pool), nil
}

// pooledMarshalSize is the least buffer Marshal asks the pool for: the pool's
// 4 KiB tier, over mem's pooling threshold.
const pooledMarshalSize = 4 << 10

// Unmarshal decodes a ModelInfer call with the call's own decoder (into the
// memory of the call before) and other messages with protobuf's.
func (c *lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var err error
	if call, ok := v.(*oip.InferCall); ok {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		err = call.Unmarshal(buf.ReadOnlyData())
		buf.Free()
	} else if err = c.base.Unmarshal(data, v); err != nil {
		m, ok := v.(protov2.Message)
		if !ok {
			return err
		}
		protov2.Reset(m)
	}
	if err != nil {
		c.invalid.Store(v, err)
	}
	return nil
}

// malformed takes the note for msg, if its bytes did not decode.
func (c *lenientCodec) malformed(msg any) error {
	e, ok := c.invalid.LoadAndDelete(msg)
	if !ok {
		return nil
	}
	return status.Error(codes.InvalidArgument, fmt.Sprintf("malformed request message: %v", e))
}

func (c *lenientCodec) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &checkedStream{ServerStream: ss, codec: c})
}

// checkedStream answers a malformed message of a streaming call when it is received.
type checkedStream struct {
	grpc.ServerStream
	codec *lenientCodec
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.codec.malformed(m)
}
