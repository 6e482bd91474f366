{{- define "tide.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tide.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "tide.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "tide.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "tide.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tide.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /* The activator's pods: same release, a name Tide's selector does not match. */}}
{{- define "tide.activatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tide.name" . }}-activator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /* Non-empty when the activator is rendered: KEDA mode that may scale to zero. */}}
{{- define "tide.activatorEnabled" -}}
{{- $a := .Values.autoscaling }}
{{- if and $a.keda.activator.enabled (or (and (eq $a.mode "keda") (eq (int $a.keda.minReplicas) 0)) (and (eq $a.mode "fast") (eq (int $a.fast.minReplicas) 0))) }}true{{ end }}
{{- end }}

{{/* The fast scaler (autoscaling.mode fast): its name, and its pods' labels. */}}
{{- define "tide.autoscalerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tide.name" . }}-autoscaler
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /* Model control (load/unload) on a port of its own, so that the NetworkPolicy can
confine it: when the policy is on and model control is (modelControl or management
keys). A policy on the HTTP port cannot tell /v2/repository/... from /predict. */}}
{{- define "tide.managementPortEnabled" -}}
{{- if and .Values.networkPolicy.enabled (or .Values.server.modelControl .Values.managementKeys.enabled) }}true{{ end }}
{{- end }}

{{- /* The Service that clients, the Ingress and the HTTPRoute send requests to. */}}
{{- define "tide.frontService" -}}
{{- include "tide.fullname" . }}{{ if include "tide.activatorEnabled" . }}-activator{{ end }}
{{- end }}

{{- define "tide.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tide.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tide.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tide.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The path tide-server serve is given. */}}
{{- define "tide.modelPath" -}}
{{- if .Values.model.path }}
{{- .Values.model.path }}
{{- else if eq .Values.model.source "url" }}
{{- printf "/models/%s" .Values.model.url.fileName }}
{{- else if eq .Values.model.source "image" }}
{{- "/models/model.pkl" }}
{{- else }}
{{- "/models" }}
{{- end }}
{{- end }}

{{/* true when the named CRD-backed kind should render: "auto" asks the API server. */}}
{{- define "tide.crdEnabled" -}}
{{- $v := index . 0 }}{{- $api := index . 1 }}{{- $caps := index . 2 }}
{{- if eq (toString $v) "auto" }}{{- $caps.APIVersions.Has $api }}{{- else }}{{- $v }}{{- end }}
{{- end }}

{{/* The PromQL selector for this release's pods. */}}
{{- define "tide.podSelectorPromQL" -}}
namespace="{{ .Release.Namespace }}",pod=~"{{ include "tide.fullname" . }}-.*"
{{- end }}

{{- define "tide.validate" -}}
{{- $modes := list "none" "cpu" "rps" "inflight" "keda" "gpu" "fast" "queue" }}
{{- if not (has .Values.autoscaling.mode $modes) }}
{{- fail (printf "autoscaling.mode %q: want one of %s" .Values.autoscaling.mode (join ", " $modes)) }}
{{- end }}
{{- $sources := list "image" "configMap" "pvc" "url" }}
{{- if not (has .Values.model.source $sources) }}
{{- fail (printf "model.source %q: want one of %s" .Values.model.source (join ", " $sources)) }}
{{- end }}
{{- if and (eq .Values.model.source "configMap") (not .Values.model.configMap.name) }}
{{- fail "model.source configMap needs model.configMap.name" }}
{{- end }}
{{- if and (eq .Values.model.source "pvc") (not .Values.model.pvc.claimName) }}
{{- fail "model.source pvc needs model.pvc.claimName" }}
{{- end }}
{{- if and (eq .Values.model.source "url") (not .Values.model.url.href) }}
{{- fail "model.source url needs model.url.href" }}
{{- end }}
{{- if include "tide.queueEnabled" . }}
{{- if not (has .Values.queue.broker (list "nats" "redis")) }}
{{- fail (printf "queue.broker %q: want nats or redis" .Values.queue.broker) }}
{{- end }}
{{- if not .Values.queue.urlSecret.name }}
{{- fail "the queue worker needs queue.urlSecret.name: a Secret whose key queue.urlSecret.key holds the broker URL" }}
{{- end }}
{{- end }}
{{- if not (has .Values.server.drainMode (list "server" "preStopSleep")) }}
{{- fail (printf "server.drainMode %q: want server or preStopSleep" .Values.server.drainMode) }}
{{- end }}
{{- end }}

{{/*
The OpenTelemetry environment of a container that exports traces: the standard
OTEL_* variables the binaries read. Call with (dict "ctx" $ "service" NAME).
*/}}
{{- define "tide.tracingEnv" -}}
{{- $t := .ctx.Values.tracing -}}
{{- if $t.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $t.otlpEndpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $t.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $t.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $t.samplerArg | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .service | quote }}
- name: K8S_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.namespace.name=%s,k8s.pod.name=$(K8S_POD_NAME)%s" .ctx.Release.Namespace (ternary (printf ",%s" $t.resourceAttributes) "" (ne $t.resourceAttributes "")) | quote }}
{{- end }}
{{- end }}

{{/*
Egress rules every Tide pod needs when networkPolicy.restrictEgress is on: DNS,
and the trace collector when tracing is on.
*/}}
{{- define "tide.baseEgress" -}}
# DNS, for the collector's and the backend's names.
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- if .Values.tracing.otlpEndpoint }}
{{- if not .Values.tracing.collector.peers }}
{{- fail "networkPolicy.restrictEgress with tracing on needs tracing.collector.peers: the pods of the collector tracing.otlpEndpoint names" }}
{{- end }}
# The trace collector.
- to:
    {{- toYaml .Values.tracing.collector.peers | nindent 4 }}
  ports:
    - {port: {{ .Values.tracing.collector.port }}, protocol: TCP}
{{- end }}
{{- end }}

{{/*
"true" when the pods consume from a broker: autoscaling.mode queue, or queue.enabled.
*/}}
{{- define "tide.queueEnabled" -}}
{{- if or .Values.queue.enabled (eq .Values.autoscaling.mode "queue") }}true{{ end }}
{{- end }}

{{/*
tolerations: the user's, then how long a pod stays bound to a node that stopped
answering (unreachable) or reports NotReady before it is evicted and replaced
elsewhere. Kubernetes gives every pod 300 s; a stateless model server loses
nothing by moving, so the chart asks for nodeFailure.tolerationSeconds (null:
the cluster's default). The Service stops sending to those pods as soon as the
node is marked NotReady either way; this is how soon the replacements start.
*/}}
{{- define "tide.tolerations" -}}
{{- $seconds := .Values.nodeFailure.tolerationSeconds -}}
{{- if or .Values.tolerations (not (kindIs "invalid" $seconds)) }}
tolerations:
{{- with .Values.tolerations }}
{{ toYaml . }}
{{- end }}
{{- if not (kindIs "invalid" $seconds) }}
{{- range list "node.kubernetes.io/unreachable" "node.kubernetes.io/not-ready" }}
- key: {{ . }}
  operator: Exists
  effect: NoExecute
  tolerationSeconds: {{ int $seconds }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
