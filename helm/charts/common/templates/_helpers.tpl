{{/*
Shared helpers of the lakehouse charts. Helm puts every chart's named templates in one
set, so the sibling subcharts (catalog, nessie, minio, …) call these directly.
*/}}

{{/* <release>-<chart>, at most 63 characters: the name of a component's objects. */}}
{{- define "lakehouse.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of another component's objects: (list $ "minio"). */}}
{{- define "lakehouse.componentName" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%s" $ctx.Release.Name (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lakehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lakehouse.labels" -}}
{{ include "lakehouse.selectorLabels" . }}
app.kubernetes.io/part-of: lakehouse
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* repository:tag of an image dict ({repository, tag}); the schema requires both. */}}
{{- define "lakehouse.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* The Secret holding the credentials: the component's existingSecret, else the global one. */}}
{{- define "lakehouse.secretName" -}}
{{- .Values.existingSecret | default .Values.global.existingSecret -}}
{{- end -}}

{{/* An env entry read from the credentials Secret: (list $ "ENV_NAME" "secret-key"). */}}
{{- define "lakehouse.secretEnv" -}}
{{- $ctx := index . 0 -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "lakehouse.secretName" $ctx }}
      key: {{ index . 2 }}
{{- end -}}

{{/* The S3 endpoint the lakehouse uses: global.s3.endpoint, else the chart's MinIO. */}}
{{- define "lakehouse.s3Endpoint" -}}
{{- .Values.global.s3.endpoint | default (printf "http://%s:9000" (include "lakehouse.componentName" (list . "minio"))) -}}
{{- end -}}

{{/* LAKEHOUSE_* settings shared by every lakehouse process (see env/.env.example). */}}
{{- define "lakehouse.env" -}}
- name: LAKEHOUSE_PROFILE
  value: cluster
- name: LAKEHOUSE_WAREHOUSE
  value: {{ .Values.global.warehouse | quote }}
- name: LAKEHOUSE_S3__ENDPOINT
  value: {{ include "lakehouse.s3Endpoint" . | quote }}
- name: LAKEHOUSE_S3__REGION
  value: {{ .Values.global.s3.region | quote }}
- name: LAKEHOUSE_S3__PATH_STYLE_ACCESS
  value: {{ .Values.global.s3.pathStyleAccess | quote }}
{{ include "lakehouse.secretEnv" (list . "LAKEHOUSE_S3__ACCESS_KEY_ID" "minio-root-user") }}
{{ include "lakehouse.secretEnv" (list . "LAKEHOUSE_S3__SECRET_ACCESS_KEY" "minio-root-password") }}
- name: LAKEHOUSE_CATALOG__URI
  value: {{ include "lakehouse.catalogUri" . | quote }}
{{- if .Values.global.catalogAuth }}
{{ include "lakehouse.secretEnv" (list . "LAKEHOUSE_CATALOG__TOKEN" "lakehouse-catalog-token") }}
{{- end }}
{{- with .Values.global.nessieRef }}
- name: NESSIE_REF
  value: {{ . | quote }}
{{- end }}
- name: LAKEHOUSE_LOG_FORMAT
  value: {{ .Values.global.metrics.logFormat | quote }}
{{- with .Values.global.metrics.pushgatewayUrl }}
- name: LAKEHOUSE_METRICS__PUSHGATEWAY_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The catalog's Nessie API v2 URL: the backend enabled in global.catalogBackend. */}}
{{- define "lakehouse.catalogUri" -}}
{{- if eq .Values.global.catalogBackend "external" -}}
{{- .Values.global.externalCatalogUri -}}
{{- else if eq .Values.global.catalogBackend "nessie" -}}
{{- printf "http://%s:19120/api/v2" (include "lakehouse.componentName" (list . "nessie")) -}}
{{- else -}}
{{- printf "http://%s:19120/api/v2" (include "lakehouse.componentName" (list . "catalog")) -}}
{{- end -}}
{{- end -}}

{{/*
Ingress for a component: (dict "ctx" $ "port" 8080). Values: ingress.enabled, className,
annotations, hosts (list of host names), tls.secretName (TLS terminated at the ingress).
*/}}
{{- define "lakehouse.ingress" -}}
{{- $ctx := .ctx -}}
{{- $ing := $ctx.Values.ingress -}}
{{- if $ing.enabled }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "lakehouse.fullname" $ctx }}
  labels:
    {{- include "lakehouse.labels" $ctx | nindent 4 }}
  {{- $annotations := merge (dict) ($ing.annotations | default dict) ($ctx.Values.global.ingress.annotations | default dict) }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with ($ing.className | default $ctx.Values.global.ingress.className) }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- if $ing.tls.secretName }}
  tls:
    - hosts:
        {{- toYaml $ing.hosts | nindent 8 }}
      secretName: {{ $ing.tls.secretName }}
  {{- end }}
  rules:
    {{- range $ing.hosts }}
    - host: {{ . | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ include "lakehouse.fullname" $ctx }}
                port:
                  number: {{ $.port }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level settings every component shares: pull secrets and the pod security context. */}}
{{- define "lakehouse.podDefaults" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
