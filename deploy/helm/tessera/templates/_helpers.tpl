{{/* Names and labels. */}}
{{- define "tessera.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tessera.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tessera.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tessera.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tessera.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tessera.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: key-broker
{{- end -}}

{{- define "tessera.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tessera.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* http or https, as the probes and the ServiceMonitor speak it. */}}
{{- define "tessera.scheme" -}}
{{- if .Values.insecureHttp -}}http{{- else -}}https{{- end -}}
{{- end -}}

{{/* Fails the render unless the required Secrets and credentials are named. */}}
{{- define "tessera.validate" -}}
{{- $_ := required "kek.existingSecret: name the Secret holding the shared KEK keyring" .Values.kek.existingSecret -}}
{{- $_ := required "tokenKey.existingSecret: name the Secret holding the shared token signing key" .Values.tokenKey.existingSecret -}}
{{- $_ := required "sealingKeys.existingSecret: name the Secret holding the shared sealing keys" .Values.sealingKeys.existingSecret -}}
{{- $_ := required "cocoSigningKey.existingSecret: name the Secret holding the shared CoCo signing key" .Values.cocoSigningKey.existingSecret -}}
{{- $_ := required "database.existingSecret: name the Secret holding the PostgreSQL URL" .Values.database.existingSecret -}}
{{- if not .Values.insecureHttp -}}
{{- $_ := required "tls.existingSecret: name a kubernetes.io/tls Secret, or set insecureHttp=true behind a TLS-terminating mesh" .Values.tls.existingSecret -}}
{{- else if ne .Values.service.type "ClusterIP" -}}
{{- fail (printf "insecureHttp with service.type %s: plain HTTP (tokens, cookies, admin credentials) would be reachable from outside the cluster; use ClusterIP behind the mesh or proxy that terminates TLS" .Values.service.type) -}}
{{- end -}}
{{- $drain := add (int .Values.preStopSleepSeconds) (mul 2 (int .Values.config.requestTimeoutSecs)) -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $drain) -}}
{{- fail (printf "terminationGracePeriodSeconds %d: at least preStopSleepSeconds + 2 × config.requestTimeoutSecs = %d (requests in flight would be killed mid-way)" (int .Values.terminationGracePeriodSeconds) (int $drain)) -}}
{{- end -}}
{{- if and (empty .Values.admin.tokens) (empty .Values.admin.jwtKeys) -}}
{{- fail "admin.tokens or admin.jwtKeys: configure at least one admin credential (without one each replica would create its own admin token in its scratch volume)" -}}
{{- end -}}
{{- range .Values.admin.tokens -}}
{{- $_ := required "admin.tokens[].name is required" .name -}}
{{- $_ := required "admin.tokens[].existingSecret is required" .existingSecret -}}
{{- if not (regexMatch "^[A-Za-z0-9_-]{1,63}$" .name) -}}
{{- fail (printf "admin.tokens[].name %q: letters, digits, '_' and '-' only" .name) -}}
{{- end -}}
{{- end -}}
{{- range .Values.admin.jwtKeys -}}
{{- $_ := required "admin.jwtKeys[].existingSecret is required" .existingSecret -}}
{{- end -}}
{{- if not (has .Values.collateral.update (list "standard" "early")) -}}
{{- fail (printf "collateral.update %q: standard or early" .Values.collateral.update) -}}
{{- end -}}
{{- if or (lt (int .Values.collateral.timeoutSecs) 1) (gt (int .Values.collateral.timeoutSecs) 300) -}}
{{- fail "collateral.timeoutSecs: between 1 and 300" -}}
{{- end -}}
{{- if lt (int .Values.replicaCount) 1 -}}
{{- fail "replicaCount must be at least 1" -}}
{{- end -}}
{{- $listen := toString .Values.listen -}}
{{- if ne (regexFind "[0-9]+$" $listen) (toString (int .Values.containerPort)) -}}
{{- fail (printf "listen %q: its port must be containerPort %d (the Service and the probes reach the broker there)" $listen (int .Values.containerPort)) -}}
{{- end -}}
{{- if or (hasPrefix "127." $listen) (hasPrefix "[::1]" $listen) (hasPrefix "localhost" $listen) (hasPrefix "[::ffff:127." $listen) -}}
{{- fail (printf "listen %q: a loopback address, which nothing outside the pod reaches (the Service, the probes): listen on 0.0.0.0 or [::]" $listen) -}}
{{- end -}}
{{- $mp := int .Values.metrics.port -}}
{{- if and (gt $mp 0) (or (eq $mp (int .Values.containerPort)) (eq $mp (int .Values.service.port))) -}}
{{- fail (printf "metrics.port %d: must differ from containerPort and service.port (the broker refuses metrics_listen equal to listen)" $mp) -}}
{{- end -}}
{{- end -}}
