{{/* The S3 lines of a Trino catalog file: MinIO (or any S3) with the lakehouse's settings. */}}
{{- define "lakehouse.trinoS3" -}}
fs.native-s3.enabled=true
s3.endpoint=${ENV:LAKEHOUSE_S3__ENDPOINT}
s3.region=${ENV:LAKEHOUSE_S3__REGION}
s3.path-style-access=${ENV:LAKEHOUSE_S3__PATH_STYLE_ACCESS}
s3.aws-access-key=${ENV:LAKEHOUSE_S3__ACCESS_KEY_ID}
s3.aws-secret-key=${ENV:LAKEHOUSE_S3__SECRET_ACCESS_KEY}
{{- end -}}
