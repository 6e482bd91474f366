# Tide's image for people who build with Docker: the production binary tide-server
# (serve and activator; the people's CLI, tide, with load and image build, is not in it). `tide image build` makes the same
# layout without a Docker daemon (and reproducibly); see docs/kubernetes.md.
#
#   docker build -t tide:dev .
#   docker build -t fraud:v1 --build-arg MODEL=examples/fraud/model.pkl .
#
# The runtime image is distroless/static:nonroot: no shell, user 65532.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -tags grpcnotrace \
      -ldflags "-s -w -buildid= -X main.version=${VERSION}" \
      -o /out/bin/tide-server ./cmd/tide-server && \
    ln -s tide-server /out/bin/tide
# The model goes to /models/<file>; with no MODEL the folder stays empty for a mount.
ARG MODEL=
RUN mkdir -p /out/models && if [ -n "$MODEL" ]; then cp -r "$MODEL" /out/models/; fi

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="tide" \
      org.opencontainers.image.description="Tide serves machine-learning models over HTTP and gRPC" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# tide-server, and tide as a link to it: the name the single-binary images had, so
# "tide serve" / "tide activator" in older manifests still run. (A folder copy keeps
# the link a link.)
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/models /models
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/tide-server", "serve"]
CMD ["/models/model.pkl"]
