package cli

import (
	"strings"
	"testing"
)

// TestServeRefusesBadQueueFlags: a queue flag that cannot work stops serve at
// start with one line naming it, and a broker URL's password is never shown.
func TestServeRefusesBadQueueFlags(t *testing.T) {
	model := "../server/testdata/fraud_logreg.joblib"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--queue-url", "amqp://u:secret@h:5672"}, "want nats://, tls:// (NATS JetStream), redis:// or rediss://"},
		{[]string{"--queue-url", "nats://u:secret@127.0.0.1:1"}, "nats: connect to nats://redacted@127.0.0.1:1"},
		{[]string{"--queue-url", "redis://:secret@127.0.0.1:1"}, "redis: group \"tide\" on stream \"tide-requests\" at redis://redacted@127.0.0.1:1"},
		{[]string{"--queue-url", "nats://127.0.0.1:1", "--queue-max-deliveries", "0"}, "--queue-max-deliveries 0"},
		{[]string{"--queue-url", "nats://127.0.0.1:1", "--queue-ack-wait", "0s"}, "--queue-ack-wait 0s"},
	}
	for _, c := range cases {
		cmd := NewServeCommand("test")
		cmd.SetArgs(append(append([]string{"--http-addr", "127.0.0.1:0", "--grpc-addr", ""}, c.args...), model))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: %v; want one line containing %q and no password", c.args, err, c.want)
		}
	}
}
