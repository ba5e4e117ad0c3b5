{{/*
The chart's name: nameOverride, else the chart name.
*/}}
{{- define "phalanx.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified name of the release's objects: fullnameOverride, else the release name when
it already contains the chart name (release "phalanx" gives "phalanx"), else RELEASE-NAME.
Truncated to 63 characters (DNS label).
*/}}
{{- define "phalanx.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "phalanx.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels of every object.
*/}}
{{- define "phalanx.labels" -}}
helm.sh/chart: {{ include "phalanx.chart" . }}
{{ include "phalanx.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: the Deployment's selector, the Service's, the PodDisruptionBudget's.
*/}}
{{- define "phalanx.selectorLabels" -}}
app.kubernetes.io/name: {{ include "phalanx.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the pods run as: serviceAccount.name, else the full name when the chart
creates it, else "default".
*/}}
{{- define "phalanx.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "phalanx.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The container image: repository:tag (tag defaults to the chart's appVersion), or
repository@digest when image.digest is set.
*/}}
{{- define "phalanx.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/*
The namespace of the leader-election Lease: config.leaderElection.leaseNamespace, else the
release namespace.
*/}}
{{- define "phalanx.leaseNamespace" -}}
{{- default .Release.Namespace (dig "leaderElection" "leaseNamespace" "" .Values.config) }}
{{- end }}

{{/*
The Lease's name: config.leaderElection.leaseName, else the scheduler's default "phalanx".
*/}}
{{- define "phalanx.leaseName" -}}
{{- default "phalanx" (dig "leaderElection" "leaseName" "" .Values.config) }}
{{- end }}

{{/*
Whether leader election is on ("true" or ""): config.leaderElection.enabled, default true (as
the scheduler's own default).
*/}}
{{- define "phalanx.leaderElection" -}}
{{- if (dig "leaderElection" "enabled" true .Values.config) }}true{{ end }}
{{- end }}

{{/*
The admin/metrics port: the port of config.listen (default 0.0.0.0:10259).
*/}}
{{- define "phalanx.adminPort" -}}
{{- $listen := default "0.0.0.0:10259" .Values.config.listen | toString }}
{{- regexFind "[0-9]+$" $listen | default "10259" }}
{{- end }}

{{/*
The scheduler's configuration file: .Values.config with leaderElection.leaseNamespace defaulted
to the release namespace.
*/}}
{{- define "phalanx.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $leader := deepCopy (default dict $config.leaderElection) }}
{{- $_ := set $leader "leaseNamespace" (include "phalanx.leaseNamespace" .) }}
{{- $_ := set $config "leaderElection" $leader }}
{{- if .Values.adminTLS.secretName }}
{{- $admin := deepCopy (default dict $config.admin) }}
{{- $_ := set $admin "tlsCertFile" "/etc/phalanx/tls/tls.crt" }}
{{- $_ := set $admin "tlsKeyFile" "/etc/phalanx/tls/tls.key" }}
{{- $_ := set $config "admin" $admin }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Checks that the values make a working scheduler; fails the render otherwise.
*/}}
{{- define "phalanx.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "phalanx.leaderElection" .)) }}
{{- fail "replicaCount > 1 needs config.leaderElection.enabled: true (without a leader every replica binds)" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.service.enabled) }}
{{- fail "serviceMonitor.enabled needs service.enabled: the ServiceMonitor scrapes the Service" }}
{{- end }}
{{- end }}

{{/*
The admin port's scheme: HTTPS with adminTLS.secretName.
*/}}
{{- define "phalanx.adminScheme" -}}
{{- if .Values.adminTLS.secretName }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}
