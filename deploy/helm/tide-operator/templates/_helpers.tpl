{{- define "tide-operator.labels" -}}
app.kubernetes.io/name: tide-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tide-operator.selectorLabels" -}}
app.kubernetes.io/name: tide-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
