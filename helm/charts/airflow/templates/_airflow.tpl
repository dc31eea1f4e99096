{{- define "lakehouse.airflow.serviceAccount" -}}
{{- .Values.serviceAccount.name | default (include "lakehouse.fullname" .) -}}
{{- end -}}

{{/* Environment of every Airflow process and task pod. */}}
{{- define "lakehouse.airflow.env" -}}
{{ include "lakehouse.env" . }}
- name: AIRFLOW__CORE__EXECUTOR
  value: {{ .Values.executor }}
- name: AIRFLOW__CORE__LOAD_EXAMPLES
  value: "false"
- name: AIRFLOW__CORE__DAGS_FOLDER
  value: /opt/airflow/dags
- name: AIRFLOW__CORE__EXECUTION_API_SERVER_URL
  value: "http://{{ include "lakehouse.fullname" . }}:8080/execution/"
- name: AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE
  value: {{ .Release.Namespace }}
- name: AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE
  value: /opt/airflow/pod_templates/pod_template.yaml
- name: AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS
  value: "true"
- name: AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS
  value: admin:admin
- name: AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE
  value: /opt/airflow/auth/passwords.json
{{ include "lakehouse.secretEnv" (list . "AIRFLOW_DB_PASSWORD" "airflow-db-password") }}
# The password is URL-quoted when Airflow reads the option (no password in the spec).
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD
  value: >-
    python -c "import os, urllib.parse as u; print('postgresql+psycopg2://airflow:' + u.quote(os.environ['AIRFLOW_DB_PASSWORD'], safe='') + '@{{ include "lakehouse.componentName" (list . "postgresql") }}:5432/airflow')"
{{ include "lakehouse.secretEnv" (list . "AIRFLOW__CORE__FERNET_KEY" "airflow-fernet-key") }}
{{ include "lakehouse.secretEnv" (list . "AIRFLOW__API_AUTH__JWT_SECRET" "airflow-jwt-secret") }}
{{- end -}}

{{/* envFrom of every Airflow container: the Spark settings of charts/spark, when enabled. */}}
{{- define "lakehouse.airflow.envFrom" -}}
- configMapRef:
    name: {{ include "lakehouse.componentName" (list . "spark") }}-env
    optional: true
{{- end -}}

{{/* Volumes shared by the Airflow pods. */}}
{{- define "lakehouse.airflow.volumes" -}}
- name: pod-templates
  configMap:
    name: {{ include "lakehouse.fullname" . }}-pod-template
- name: auth
  emptyDir: {}
- name: logs
  emptyDir: {}
{{- end -}}

{{- define "lakehouse.airflow.volumeMounts" -}}
- name: pod-templates
  mountPath: /opt/airflow/pod_templates
  readOnly: true
- name: auth
  mountPath: /opt/airflow/auth
- name: logs
  mountPath: /opt/airflow/logs
{{- end -}}

{{/* Wait until `airflow db migrate` (the migrate Job) has run. */}}
{{- define "lakehouse.airflow.waitForMigrations" -}}
- name: wait-for-migrations
  image: {{ include "lakehouse.image" .Values.image | quote }}
  args: ["airflow", "db", "check-migrations", "--migration-wait-timeout", "600"]
  env:
    {{- include "lakehouse.airflow.env" . | nindent 4 }}
  resources:
    {{- toYaml .Values.scheduler.resources | nindent 4 }}
{{- end -}}
