//go:build tools

// Package traefik pins Traefik, the cluster's ingress and Gateway API controller;
// hack/cluster/cluster build compiles it from this module so the product's go.mod
// never carries its dependencies. v3.6: v3.7's module graph needs versions the
// module proxy does not serve (a fork of go-http-auth and lego v5's Akamai
// client), and its dynamic/ext module is a directory of Traefik's repository
// that its module download leaves out.
package traefik

import _ "github.com/traefik/traefik/v3/cmd/traefik"
