package server

import "testing"

// BenchmarkPredictMonitoring is POST /predict through the whole handler with
// monitoring off (no profile) and on (profile: drift of both features and the
// prediction; every prediction kept for feedback).
func BenchmarkPredictMonitoring(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[on]
		b.Run(name, func(b *testing.B) {
			files := map[string][]byte{}
			if on {
				files["profile.json"] = fraudProfile(&testing.T{})
			}
			s, _ := monitoredServerAt(b, b.TempDir(), files)
			benchHandler(b, s, "/predict", `{"feature1": -0.5, "feature2": 1.2}`)
		})
	}
}
