{{/*
The hardened security context every workload of this chart and every task pod runs with
(restricted Pod Security Standard). The task pods get the same values from the pipeline
settings (tasks/config.py); keep the two in step.
*/}}
{{- define "day-ahead.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "day-ahead.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "day-ahead.labels" -}}
app.kubernetes.io/part-of: day-ahead-pipeline
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
