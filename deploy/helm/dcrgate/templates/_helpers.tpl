{{/*
Names, labels and the checks run before anything is rendered.
*/}}

{{/* The chart name, app.kubernetes.io/name. */}}
{{- define "dcrgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The resource name prefix: fullnameOverride, else the release name when it contains the chart
name, else "<release>-<chart>". Truncated so that suffixed names ("-policies") stay within 63.
*/}}
{{- define "dcrgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dcrgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "dcrgate.labels" -}}
helm.sh/chart: {{ include "dcrgate.chart" . }}
app.kubernetes.io/name: {{ include "dcrgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "dcrgate.tag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dcrgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The gateway pods' selector (Deployment, Services, budget, policies, spread). */}}
{{- define "dcrgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dcrgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{/* The helm test pod's labels (admitted to the admin port by the NetworkPolicy). */}}
{{- define "dcrgate.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "dcrgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end -}}

{{- define "dcrgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dcrgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dcrgate.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/* repository@digest when a digest is given, else repository:tag. */}}
{{- define "dcrgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "dcrgate.tag" .) -}}
{{- end -}}
{{- end -}}

{{- define "dcrgate.testImage" -}}
{{- $i := .Values.tests.image -}}
{{- if $i.digest -}}
{{- printf "%s@%s" $i.repository $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository $i.tag -}}
{{- end -}}
{{- end -}}

{{- define "dcrgate.configMapName" -}}
{{- printf "%s-config" (include "dcrgate.fullname" .) -}}
{{- end -}}

{{- define "dcrgate.policyConfigMapName" -}}
{{- default (printf "%s-policies" (include "dcrgate.fullname" .)) .Values.policy.existingConfigMap -}}
{{- end -}}

{{/* The profile the chart ships in its ConfigMap: policy.inline, else the chart's copy. */}}
{{- define "dcrgate.policyContent" -}}
{{- if .Values.policy.inline -}}
{{- .Values.policy.inline -}}
{{- else -}}
{{- .Files.Get "files/uk-ob-dcr-3.3.toml" -}}
{{- end -}}
{{- end -}}

{{/*
The body of one [section] of the inline configuration (its lines up to the next table header),
or "". Used by the checks below; a configuration from an existing ConfigMap or Secret is not
read at render time.
*/}}
{{- define "dcrgate.tomlSection" -}}
{{- $re := printf "(?m)^[ \\t]*\\[%s\\][ \\t]*(#.*)?\\n(([^\\[\\n].*)?\\n)*" (.section | replace "." "\\.") -}}
{{- regexFind $re (printf "%s\n" .config) -}}
{{- end -}}

{{/* The value of `key = <value>` in a section body (a string without its quotes, or a number), or "". */}}
{{- define "dcrgate.tomlValue" -}}
{{- $line := regexFind (printf "(?m)^[ \\t]*%s[ \\t]*=[ \\t]*(\"[^\"]*\"|'[^']*'|[0-9]+)" .key) .body -}}
{{- if $line -}}
{{- regexReplaceAll "^[^=]*=[ \\t]*(?:\"([^\"]*)\"|'([^']*)'|([0-9]+))$" $line "${1}${2}${3}" -}}
{{- end -}}
{{- end -}}

{{/* "true" when a section body sets `key` (whatever its value). */}}
{{- define "dcrgate.tomlHasKey" -}}
{{- if regexMatch (printf "(?m)^[ \\t]*%s[ \\t]*=" .key) .body -}}true{{- end -}}
{{- end -}}

{{/* The port of an `address = "IP:port"` in a section body, or "". */}}
{{- define "dcrgate.tomlPort" -}}
{{- $addr := include "dcrgate.tomlValue" (dict "body" .body "key" "address") -}}
{{- if regexMatch ":[0-9]+$" $addr -}}
{{- regexReplaceAll "^.*:([0-9]+)$" $addr "${1}" -}}
{{- end -}}
{{- end -}}

{{/* "true" when the inline configuration puts a store (replay or rate limits) in Redis. */}}
{{- define "dcrgate.inlineUsesRedis" -}}
{{- $c := .Values.config.inline -}}
{{- range $s := list "replay" "rate_limits" -}}
{{- $body := include "dcrgate.tomlSection" (dict "config" $c "section" $s) -}}
{{- if eq (include "dcrgate.tomlValue" (dict "body" $body "key" "store")) "redis" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dcrgate.configFromInline" -}}
{{- if not (or .Values.config.existingConfigMap .Values.config.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/*
Consistency checks: values that contradict each other, or an inline configuration that does not
fit the pod (ports, shutdown timing, Redis). Each failure names the values to change.
*/}}
{{- define "dcrgate.validate" -}}
{{- $v := .Values -}}
{{- if and $v.config.existingConfigMap $v.config.existingSecret -}}
{{- fail "config: set at most one of existingConfigMap and existingSecret" -}}
{{- end -}}
{{- if and $v.policy.inline $v.policy.existingConfigMap -}}
{{- fail "policy: set at most one of inline and existingConfigMap" -}}
{{- end -}}
{{- if eq (empty $v.tls.clientCA.secretName) (empty $v.tls.clientCA.configMapName) -}}
{{- fail "tls.clientCA: set exactly one of secretName and configMapName" -}}
{{- end -}}
{{- if and $v.redis.urlSecret.name (not $v.redis.enabled) -}}
{{- fail "redis.urlSecret.name is set but redis.enabled is false: the chart mounts the Redis URL (redis/url) only with redis.enabled" -}}
{{- end -}}
{{- if and $v.tls.crls.secretName (not $v.tls.crls.keys) -}}
{{- fail "tls.crls.keys: list the keys of the Secret tls.crls.secretName to project to tls/crl/" -}}
{{- end -}}
{{- if and $v.podDisruptionBudget.enabled (kindIs "invalid" $v.podDisruptionBudget.minAvailable) (kindIs "invalid" $v.podDisruptionBudget.maxUnavailable) -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable" -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling: minReplicas is above maxReplicas" -}}
{{- end -}}
{{- if $v.networkPolicy.enabled -}}
{{- $eg := $v.networkPolicy.egress -}}
{{- if not (or $eg.registry.to $eg.registry.cidrs) -}}
{{- fail "networkPolicy.egress.registry: set to (peers) or cidrs, where upstream.url points" -}}
{{- end -}}
{{- if and $v.redis.enabled (not (or $eg.redis.to $eg.redis.cidrs)) -}}
{{- fail "networkPolicy.egress.redis: set to (peers) or cidrs, where redis.url points" -}}
{{- end -}}
{{- if and $v.networkPolicy.cilium.enabled (not $v.networkPolicy.cilium.fqdns) -}}
{{- fail "networkPolicy.cilium.fqdns: name the key set hosts" -}}
{{- end -}}
{{- end -}}
{{- if and (not $v.policy.inline) (not $v.policy.existingConfigMap) (ne $v.policy.fileName "uk-ob-dcr-3.3.toml") -}}
{{- fail (printf "policy.fileName %s: the chart ships only uk-ob-dcr-3.3.toml; set policy.inline or policy.existingConfigMap" $v.policy.fileName) -}}
{{- end -}}
{{- if include "dcrgate.configFromInline" . -}}
{{- $c := $v.config.inline -}}
{{- $files := dict "listener.certificate" "tls/gateway.pem" "listener.private_key" "tls/gateway.key" "listener.client_ca" "tls/client-ca.pem" "policy.profile" (printf "policies/%s" $v.policy.fileName) -}}
{{- range $setting, $want := $files -}}
{{- $parts := splitList "." $setting -}}
{{- $body := include "dcrgate.tomlSection" (dict "config" $c "section" (first $parts)) -}}
{{- $got := include "dcrgate.tomlValue" (dict "body" $body "key" (last $parts)) -}}
{{- if and $got (ne $got $want) (ne $got (printf "/etc/dcrgate/%s" $want)) -}}
{{- fail (printf "config.inline: %s = %q, but the chart projects that file to %s" $setting $got $want) -}}
{{- end -}}
{{- end -}}
{{- if not (regexMatch "(?m)^[ \\t]*\\[listener\\]" $c) -}}
{{- fail "config.inline: no [listener] section (or set config.existingConfigMap / existingSecret)" -}}
{{- end -}}
{{- $listener := include "dcrgate.tomlPort" (dict "body" (include "dcrgate.tomlSection" (dict "config" $c "section" "listener"))) -}}
{{- if and $listener (ne $listener (toString $v.ports.https)) -}}
{{- fail (printf "config.inline: listener.address port %s differs from ports.https %v" $listener $v.ports.https) -}}
{{- end -}}
{{- $admin := include "dcrgate.tomlPort" (dict "body" (include "dcrgate.tomlSection" (dict "config" $c "section" "admin"))) -}}
{{- if and $admin (ne $admin (toString $v.ports.metrics)) -}}
{{- fail (printf "config.inline: admin.address port %s differs from ports.metrics %v" $admin $v.ports.metrics) -}}
{{- end -}}
{{- $server := include "dcrgate.tomlSection" (dict "config" $c "section" "server") -}}
{{- $grace := default "10" (include "dcrgate.tomlValue" (dict "body" $server "key" "grace_period_seconds")) | int -}}
{{- $runtimes := default "5" (include "dcrgate.tomlValue" (dict "body" $server "key" "graceful_shutdown_timeout_seconds")) | int -}}
{{- $needed := add (int $v.preStopSleepSeconds) $grace $runtimes -}}
{{- if le (int $v.terminationGracePeriodSeconds) $needed -}}
{{- fail (printf "terminationGracePeriodSeconds %v must exceed preStopSleepSeconds %v + server.grace_period_seconds %d + server.graceful_shutdown_timeout_seconds %d = %d (the kubelet would cut the drain short)" $v.terminationGracePeriodSeconds $v.preStopSleepSeconds $grace $runtimes $needed) -}}
{{- end -}}
{{- if and (include "dcrgate.inlineUsesRedis" .) (not $v.redis.enabled) -}}
{{- fail "config.inline puts a store in Redis (store = \"redis\") but redis.enabled is false: the NetworkPolicy would block it" -}}
{{- end -}}
{{- /* The Redis URL: url in the configuration, or url_file naming the projected redis.urlSecret. */ -}}
{{- $redis := include "dcrgate.tomlSection" (dict "config" $c "section" "redis") -}}
{{- $hasUrl := include "dcrgate.tomlHasKey" (dict "body" $redis "key" "url") -}}
{{- if include "dcrgate.tomlHasKey" (dict "body" $redis "key" "url_file") -}}
{{- if $hasUrl -}}
{{- fail "config.inline: [redis] sets both url and url_file (the gateway takes one): keep url_file = \"redis/url\" with redis.urlSecret" -}}
{{- end -}}
{{- if not $v.redis.urlSecret.name -}}
{{- fail "config.inline: [redis] url_file is set but redis.urlSecret.name is empty: name the Secret holding the Redis URL in redis.urlSecret (the chart projects it to redis/url)" -}}
{{- end -}}
{{- $got := include "dcrgate.tomlValue" (dict "body" $redis "key" "url_file") -}}
{{- if and (ne $got "redis/url") (ne $got "/etc/dcrgate/redis/url") -}}
{{- fail (printf "config.inline: redis.url_file = %q, but the chart projects redis.urlSecret to redis/url" $got) -}}
{{- end -}}
{{- else if $v.redis.urlSecret.name -}}
{{- if $hasUrl -}}
{{- fail "config.inline: redis.urlSecret is set but [redis] has a literal url: replace url with url_file = \"redis/url\" (the file the chart projects from redis.urlSecret)" -}}
{{- else -}}
{{- fail "config.inline: redis.urlSecret is set but [redis] has no url_file = \"redis/url\": the projected Redis URL would be unused" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
