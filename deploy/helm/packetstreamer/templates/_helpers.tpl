{{- define "ps.labels" -}}
app.kubernetes.io/name: packetstreamer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "ps.selector" -}}
app.kubernetes.io/name: packetstreamer
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ps.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "ps.receiverAddress" -}}
{{- if .Values.sensor.receiverAddress -}}
{{ .Values.sensor.receiverAddress }}
{{- else -}}
packetstreamer-receiver.{{ .Release.Namespace }}.svc:{{ .Values.receiver.port }}
{{- end -}}
{{- end -}}
