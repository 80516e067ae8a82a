{{/* Labels of the schedule API (serve-*.yaml). */}}
{{- define "day-ahead.serveSelector" -}}
app.kubernetes.io/name: day-ahead-serve
app.kubernetes.io/component: schedule-api
{{- end -}}

{{- define "day-ahead.serveLabels" -}}
{{ include "day-ahead.labels" . }}
{{ include "day-ahead.serveSelector" . }}
{{- end -}}
