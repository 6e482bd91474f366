package autoscaler

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tideserve/tide/internal/autoscaler/externalscaler"
)

// MetricName is the one metric the scaler gives KEDA: its desired replicas, with a
// target of 1 per pod, so the HPA's ceil(value / target) is exactly the decision.
const MetricName = "tide-desired-replicas"

// maxStreams bounds KEDA's push streams (one per ScaledObject per KEDA operator
// replica is what KEDA opens; more is a client gone wrong).
const maxStreams = 64

// streamHeartbeat: a push stream also repeats the state this often, so KEDA
// re-checks the ScaledObject even if a change was missed.
const streamHeartbeat = 10 * time.Second

// grpcService answers KEDA's external scaler calls from the scaler's last decision.
type grpcService struct {
	externalscaler.UnimplementedExternalScalerServer
	s       *Scaler
	streams chan struct{} // a slot per open stream
}

// Register serves the scaler's ExternalScaler service on g.
func (s *Scaler) Register(g *grpc.Server) {
	externalscaler.RegisterExternalScalerServer(g, &grpcService{s: s, streams: make(chan struct{}, maxStreams)})
}

func (g *grpcService) IsActive(context.Context, *externalscaler.ScaledObjectRef) (*externalscaler.IsActiveResponse, error) {
	return &externalscaler.IsActiveResponse{Result: g.s.Last().Active}, nil
}

// StreamIsActive is KEDA's push: each message makes KEDA check the ScaledObject at
// once, which is what wakes a Deployment at zero within a tick of the first request.
func (g *grpcService) StreamIsActive(_ *externalscaler.ScaledObjectRef, stream externalscaler.ExternalScaler_StreamIsActiveServer) error {
	select {
	case g.streams <- struct{}{}:
		defer func() { <-g.streams }()
	default:
		return status.Errorf(codes.ResourceExhausted, "%d push streams open already", maxStreams)
	}
	changed, stop := g.s.watch()
	defer stop()
	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	for {
		if err := stream.Send(&externalscaler.IsActiveResponse{Result: g.s.Last().Active}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-changed:
		case <-beat.C:
		}
	}
}

func (g *grpcService) GetMetricSpec(context.Context, *externalscaler.ScaledObjectRef) (*externalscaler.GetMetricSpecResponse, error) {
	return &externalscaler.GetMetricSpecResponse{MetricSpecs: []*externalscaler.MetricSpec{
		{MetricName: MetricName, TargetSize: 1, TargetSizeFloat: 1},
	}}, nil
}

// GetMetrics answers Unavailable until the scaler is warm: the HPA then keeps the
// count it has (scale-ups still go through the raiser and KEDA's activation).
func (g *grpcService) GetMetrics(_ context.Context, req *externalscaler.GetMetricsRequest) (*externalscaler.GetMetricsResponse, error) {
	last := g.s.Last()
	if !last.Warm {
		return nil, status.Errorf(codes.Unavailable, "warming up: the scaler has not yet watched a whole %s stable window", g.s.policy.StableWindow)
	}
	d := last.Desired
	return &externalscaler.GetMetricsResponse{MetricValues: []*externalscaler.MetricValue{
		{MetricName: req.GetMetricName(), MetricValue: int64(d), MetricValueFloat: float64(d)},
	}}, nil
}
