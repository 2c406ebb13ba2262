{{- define "pagewright.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pagewright.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "pagewright.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "pagewright.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "pagewright.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pagewright.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pagewright.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "pagewright.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pagewright.secretName" -}}
{{- default (include "pagewright.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* A setting given in the TOML config (top level or [gateway]) or as its PWG_* variable. */}}
{{- define "pagewright.setting" -}}
{{- $name := index . 1 }}
{{- $values := (index . 0).Values }}
{{- $toml := fromToml $values.config }}
{{- $gateway := get $toml "gateway" | default dict }}
{{- or (get $values.env (printf "PWG_%s" (upper $name))) (get $toml $name) (get $gateway $name) }}
{{- end }}

{{/* Several replicas need storage, a catalog and a master key they all share. */}}
{{- define "pagewright.checkReplicas" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- if not (include "pagewright.setting" (list . "backend")) }}
{{- fail "several replicas need a shared backend (backend in config, or PWG_BACKEND in env: s3://, azure:// or gcs://): the filesystem backend serves one replica" }}
{{- end }}
{{- if not (hasPrefix "postgresql" (include "pagewright.setting" (list . "catalog_url"))) }}
{{- fail "several replicas need a PostgreSQL catalog (catalog_url in config, or PWG_CATALOG_URL in env: postgresql://...)" }}
{{- end }}
{{- if not (or .Values.existingSecret .Values.secrets.masterKey) }}
{{- fail "several replicas must share a master key (secrets.masterKey or existingSecret)" }}
{{- end }}
{{- end }}
{{- end }}
