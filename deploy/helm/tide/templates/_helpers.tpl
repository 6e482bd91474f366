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
{{- $k := .Values.autoscaling.keda }}
{{- if and (eq .Values.autoscaling.mode "keda") $k.activator.enabled (eq (int $k.minReplicas) 0) }}true{{ end }}
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
{{- $modes := list "none" "cpu" "rps" "inflight" "keda" "gpu" }}
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
{{- if not (has .Values.server.drainMode (list "server" "preStopSleep")) }}
{{- fail (printf "server.drainMode %q: want server or preStopSleep" .Values.server.drainMode) }}
{{- end }}
{{- end }}
