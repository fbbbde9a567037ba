// Package k8s holds no code: it is the home of the manifest test, which
// renders every overlay of deploy/k8s with kustomize's Go API (what
// `kubectl kustomize` runs), decodes every object strictly into its typed
// Kubernetes API struct (an unknown or misspelt field fails), and checks
// the rendered set against the deployment policy of docs/deploy.md.
package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlay is one kustomization an operator applies, and what its rendering
// must contain beyond the policy every overlay meets.
type overlay struct {
	dir string
	// provisionerScaler is "hpa" (base's CPU HorizontalPodAutoscaler) or
	// "keda" (components/keda's ScaledObject, and then no HPA).
	provisionerScaler string
	// monitoring: the ServiceMonitors, PrometheusRule and dashboard.
	monitoring bool
	// postgres: the CloudNativePG Cluster and its NetworkPolicy.
	postgres bool
	// natsSyncAlways: nats.conf fsyncs every write.
	natsSyncAlways bool
}

var overlays = []overlay{
	{dir: "overlays/production", provisionerScaler: "hpa", monitoring: true, postgres: true, natsSyncAlways: true},
	{dir: "overlays/single-node", provisionerScaler: "hpa", natsSyncAlways: true},
	// The production overlay with the optional KEDA component, as
	// docs/deploy.md tells operators to add it.
	{dir: "testdata/production-keda", provisionerScaler: "keda", monitoring: true, postgres: true, natsSyncAlways: true},
}

func TestOverlays(t *testing.T) {
	for _, o := range overlays {
		t.Run(strings.ReplaceAll(o.dir, "/", "_"), func(t *testing.T) {
			objs := render(t, o.dir)
			checkPolicy(t, o, objs)
		})
	}
}

// object is one rendered manifest: its identity and the typed value it was
// strictly decoded into.
type object struct {
	apiVersion, kind, name, namespace string
	value                             any
}

func (o object) String() string { return o.kind + "/" + o.name }

// kinds maps apiVersion and kind to a constructor of the struct a manifest
// of that kind must decode into. A kind that is not here fails the test:
// add it deliberately, with its type.
var kinds = map[string]func() any{
	"v1/Namespace":                            func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":                       func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1/Service":                              func() any { return new(corev1.Service) },
	"apps/v1/Deployment":                      func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                     func() any { return new(appsv1.StatefulSet) },
	"batch/v1/Job":                            func() any { return new(batchv1.Job) },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"policy/v1/PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"postgresql.cnpg.io/v1/Cluster":           func() any { return new(cnpgCluster) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return new(serviceMonitor) },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return new(podMonitor) },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return new(prometheusRule) },
	"keda.sh/v1alpha1/ScaledObject":           func() any { return new(scaledObject) },
}

// render runs kustomize on dir (relative to this package) and decodes every
// resource strictly.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	var objs []object
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
		o, err := decode(y)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		objs = append(objs, o)
	}
	if t.Failed() {
		t.FailNow()
	}
	return objs
}

// decode turns one YAML manifest into its typed object: YAML to JSON, then
// encoding/json with DisallowUnknownFields into the type its apiVersion and
// kind name.
func decode(y []byte) (object, error) {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return object{}, err
	}
	var tm struct {
		metav1.TypeMeta
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(j, &tm); err != nil {
		return object{}, err
	}
	o := object{apiVersion: tm.APIVersion, kind: tm.Kind, name: tm.Metadata.Name, namespace: tm.Metadata.Namespace}
	mk, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return o, fmt.Errorf("%s %s: kind not known to the manifest test (add it to kinds, with its type)", tm.APIVersion, o)
	}
	if o.name == "" {
		return o, fmt.Errorf("%s: no metadata.name", o)
	}
	v := mk()
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return o, fmt.Errorf("%s: %w", o, err)
	}
	o.value = v
	return o, nil
}

func find[T any](objs []object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// workload is one pod template with where it came from.
type workload struct {
	kind, name string
	// server: a long-running pod (Deployment, StatefulSet), which must have
	// probes; a Job's pod need not.
	server bool
	tmpl   corev1.PodTemplateSpec
}

func workloads(objs []object) []workload {
	var ws []workload
	for _, d := range find[appsv1.Deployment](objs) {
		ws = append(ws, workload{"Deployment", d.Name, true, d.Spec.Template})
	}
	for _, s := range find[appsv1.StatefulSet](objs) {
		ws = append(ws, workload{"StatefulSet", s.Name, true, s.Spec.Template})
	}
	for _, j := range find[batchv1.Job](objs) {
		ws = append(ws, workload{"Job", j.Name, false, j.Spec.Template})
	}
	return ws
}

func checkPolicy(t *testing.T, o overlay, objs []object) {
	ns := ""
	for _, n := range find[corev1.Namespace](objs) {
		ns = n.Name
	}
	if ns == "" {
		t.Fatal("no Namespace")
	}
	for _, obj := range objs {
		if obj.kind != "Namespace" && obj.namespace != ns {
			t.Errorf("%s: namespace %q, want %q", obj, obj.namespace, ns)
		}
	}

	ws := workloads(objs)
	for _, w := range ws {
		checkPodSpec(t, w)
	}
	checkImages(t, objs, ws)
	checkAvailability(t, o, objs)
	checkNetworkPolicies(t, o, objs, ws)
	checkServices(t, objs, ws)
	checkTelemetry(t, objs, ns)
	checkMonitoring(t, o, objs, ws)
	checkNATS(t, o, objs)
}

// checkPodSpec: the container policy of docs/deploy.md.
func checkPodSpec(t *testing.T, w workload) {
	t.Helper()
	spec := w.tmpl.Spec
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(spec.Containers) == 0 {
		t.Errorf("%s/%s: no containers", w.kind, w.name)
	}
	for i, c := range all {
		id := fmt.Sprintf("%s/%s container %s", w.kind, w.name, c.Name)
		init := i < len(spec.InitContainers)
		if w.server && !init {
			if c.ReadinessProbe == nil {
				t.Errorf("%s: no readinessProbe", id)
			}
			if c.LivenessProbe == nil {
				t.Errorf("%s: no livenessProbe", id)
			}
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("%s: no %s request", id, r)
			}
			if _, ok := c.Resources.Limits[r]; !ok {
				t.Errorf("%s: no %s limit", id, r)
			}
		}
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", id)
			continue
		}
		if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			t.Errorf("%s: runAsNonRoot is not true (pod or container)", id)
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			t.Errorf("%s: runAsNonRoot false overrides the pod's", id)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", id)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", id)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", id)
		}
	}
}

var (
	// A release pinned to its patch: 1.2.3, v1.2.3, 2.12.15-alpine.
	patchTag = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$`)
	// PostgreSQL numbers its releases major.minor, the minor being the
	// patch level (17.12): CloudNativePG's images follow it.
	postgresTag = regexp.MustCompile(`^\d+\.\d+([-+][0-9A-Za-z.-]+)?$`)
	digestRef   = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
)

// pinned says why an image reference is not pinned to a patch release (or
// a digest), or "" when it is.
func pinned(ref string, tagRE *regexp.Regexp) string {
	if digestRef.MatchString(ref) {
		return ""
	}
	name := ref
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		name = ref[i+1:]
	}
	i := strings.LastIndex(name, ":")
	if i < 0 {
		return "no tag (means :latest)"
	}
	tag := name[i+1:]
	if tag == "latest" || !tagRE.MatchString(tag) {
		return fmt.Sprintf("tag %q is not a patch release", tag)
	}
	return ""
}

func checkImages(t *testing.T, objs []object, ws []workload) {
	t.Helper()
	for _, w := range ws {
		for _, c := range append(slices.Clone(w.tmpl.Spec.InitContainers), w.tmpl.Spec.Containers...) {
			if why := pinned(c.Image, patchTag); why != "" {
				t.Errorf("%s/%s container %s: image %s: %s", w.kind, w.name, c.Name, c.Image, why)
			}
		}
	}
	for _, c := range find[cnpgCluster](objs) {
		if why := pinned(c.Spec.ImageName, postgresTag); why != "" {
			t.Errorf("Cluster/%s: imageName %s: %s", c.Metadata.Name, c.Spec.ImageName, why)
		}
	}
}

// checkAvailability: PDB and autoscaling for the edge and the provisioner.
func checkAvailability(t *testing.T, o overlay, objs []object) {
	t.Helper()
	deployments := map[string]*appsv1.Deployment{}
	for _, d := range find[appsv1.Deployment](objs) {
		deployments[d.Name] = d
	}
	pdbFor := func(name string) bool {
		d := deployments[name]
		if d == nil {
			return false
		}
		for _, p := range find[policyv1.PodDisruptionBudget](objs) {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err != nil {
				t.Errorf("PodDisruptionBudget/%s: %v", p.Name, err)
				continue
			}
			if !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				return true
			}
		}
		return false
	}
	hpas := map[string]*autoscalingv2.HorizontalPodAutoscaler{}
	for _, h := range find[autoscalingv2.HorizontalPodAutoscaler](objs) {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HorizontalPodAutoscaler/%s scales a %s", h.Name, h.Spec.ScaleTargetRef.Kind)
		}
		if hpas[h.Spec.ScaleTargetRef.Name] != nil {
			t.Errorf("two HorizontalPodAutoscalers scale %s", h.Spec.ScaleTargetRef.Name)
		}
		hpas[h.Spec.ScaleTargetRef.Name] = h
	}
	scaled := map[string]*scaledObject{}
	for _, s := range find[scaledObject](objs) {
		scaled[s.Spec.ScaleTargetRef.Name] = s
		if hpas[s.Spec.ScaleTargetRef.Name] != nil {
			t.Errorf("ScaledObject/%s and an HPA both scale %s: KEDA makes its own HPA, use one or the other", s.Metadata.Name, s.Spec.ScaleTargetRef.Name)
		}
	}
	for _, name := range []string{"sso-edge", "jitprov-provisioner"} {
		d := deployments[name]
		if d == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment/%s sets replicas: its autoscaler owns the count", name)
		}
		if !pdbFor(name) {
			t.Errorf("no PodDisruptionBudget selects the pods of Deployment/%s", name)
		}
		scaler := "hpa"
		if name == "jitprov-provisioner" {
			scaler = o.provisionerScaler
		}
		switch scaler {
		case "hpa":
			h := hpas[name]
			if h == nil {
				t.Errorf("no HorizontalPodAutoscaler for Deployment/%s", name)
				continue
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
				t.Errorf("HorizontalPodAutoscaler/%s: minReplicas %s, maxReplicas %d; want at least 2", h.Name, fmtPtr(h.Spec.MinReplicas), h.Spec.MaxReplicas)
			}
		case "keda":
			s := scaled[name]
			if s == nil {
				t.Errorf("no ScaledObject for Deployment/%s", name)
				continue
			}
			checkScaledObject(t, s)
		}
	}
}

// checkScaledObject: the provisioner scaled on its consumer's lag, with
// CPU beside it.
func checkScaledObject(t *testing.T, s *scaledObject) {
	t.Helper()
	var jetstream, cpu bool
	for _, tr := range s.Spec.Triggers {
		switch tr.Type {
		case "nats-jetstream":
			jetstream = true
			// The names in internal/bus/topology.go.
			if tr.Metadata["stream"] != "LOGINS" || tr.Metadata["consumer"] != "provisioner" {
				t.Errorf("ScaledObject/%s: nats-jetstream trigger on %s/%s, want LOGINS/provisioner", s.Metadata.Name, tr.Metadata["stream"], tr.Metadata["consumer"])
			}
			ep := tr.Metadata["natsServerMonitoringEndpoint"]
			if host, port, err := net.SplitHostPort(ep); err != nil || port != "8222" || !strings.HasPrefix(host, "nats-headless.") {
				t.Errorf("ScaledObject/%s: natsServerMonitoringEndpoint %q, want the headless Service's monitoring port", s.Metadata.Name, ep)
			}
		case "cpu":
			cpu = true
		}
	}
	if !jetstream || !cpu {
		t.Errorf("ScaledObject/%s: triggers nats-jetstream %t, cpu %t; want both", s.Metadata.Name, jetstream, cpu)
	}
	if s.Spec.Fallback != nil {
		t.Errorf("ScaledObject/%s: KEDA refuses fallback beside a cpu trigger", s.Metadata.Name)
	}
	if s.Spec.MinReplicaCount == nil || *s.Spec.MinReplicaCount < 2 {
		t.Errorf("ScaledObject/%s: minReplicaCount below 2", s.Metadata.Name)
	}
}

// checkNetworkPolicies: a default deny for the namespace, and a policy of
// its own for every pod, covering both directions.
func checkNetworkPolicies(t *testing.T, o overlay, objs []object, ws []workload) {
	t.Helper()
	nps := find[networkingv1.NetworkPolicy](objs)
	var deny bool
	var specific []*networkingv1.NetworkPolicy
	for _, np := range nps {
		if len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 {
			types := slices.Clone(np.Spec.PolicyTypes)
			slices.Sort(types)
			if slices.Equal(types, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress}) &&
				len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 {
				deny = true
			} else {
				t.Errorf("NetworkPolicy/%s selects every pod but is not a plain default deny", np.Name)
			}
			continue
		}
		specific = append(specific, np)
	}
	if !deny {
		t.Error("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)")
	}
	covers := func(podLabels map[string]string, dir networkingv1.PolicyType) bool {
		for _, np := range specific {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil {
				t.Errorf("NetworkPolicy/%s: %v", np.Name, err)
				continue
			}
			if sel.Matches(labels.Set(podLabels)) && slices.Contains(np.Spec.PolicyTypes, dir) {
				return true
			}
		}
		return false
	}
	pods := map[string]map[string]string{}
	for _, w := range ws {
		pods[w.kind+"/"+w.name] = w.tmpl.Labels
	}
	if o.postgres {
		// The operator labels its instances' pods (and its Jobs') so.
		for _, c := range find[cnpgCluster](objs) {
			pods["Cluster/"+c.Metadata.Name] = map[string]string{"cnpg.io/cluster": c.Metadata.Name}
		}
	}
	for id, l := range pods {
		for _, dir := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
			if !covers(l, dir) {
				t.Errorf("%s: no NetworkPolicy allows its %s (the default deny blocks all of it)", id, dir)
			}
		}
	}
	// And no policy is left selecting nothing (a renamed label).
	for _, np := range specific {
		if !slices.ContainsFunc(slices.Collect(maps.Values(pods)), func(l map[string]string) bool { return selects(np.Spec.PodSelector, l) }) {
			t.Errorf("NetworkPolicy/%s selects no pod of the overlay", np.Name)
		}
	}
	// Every pod that talks to others resolves names: DNS egress to port 53.
	for id, l := range pods {
		if !egressAllows(specific, l, 53, corev1.ProtocolUDP) {
			t.Errorf("%s: no DNS egress (UDP 53)", id)
		}
	}
	// The flows the services need, by the labels of both ends.
	natsLabels := podLabelsOf(ws, "nats")
	collectorLabels := podLabelsOf(ws, "otel-collector")
	flows := []struct {
		from  string // app.kubernetes.io/name of the client
		to    map[string]string
		port  int32
		check bool
	}{
		{"jitprov-provisioner", natsLabels, 4222, true},
		{"sso-edge", natsLabels, 4222, true},
		{"notifier", natsLabels, 4222, true},
		{"jitprov-provisioner", collectorLabels, 4318, true},
		{"sso-edge", collectorLabels, 4318, true},
		{"notifier", collectorLabels, 4318, true},
		{"jitprov-provisioner", postgresLabels, 5432, o.postgres},
		{"sso-edge", postgresLabels, 5432, o.postgres},
		{"notifier", postgresLabels, 5432, o.postgres},
		{"jitprov-admin", postgresLabels, 5432, o.postgres},
	}
	for _, f := range flows {
		if !f.check {
			continue
		}
		from := podLabelsOf(ws, f.from)
		if from == nil {
			t.Errorf("no pods named %s", f.from)
			continue
		}
		if !egressTo(specific, from, local(f.to), f.port) {
			t.Errorf("%s may not connect to %v port %d", f.from, f.to, f.port)
		}
		if !ingressFrom(specific, f.to, local(from), f.port) {
			t.Errorf("%v does not admit %s on port %d", f.to, f.from, f.port)
		}
	}
	// /metrics: Prometheus scrapes every service; no other pod of the
	// cluster reads it (it lists every organisation and connection).
	for _, m := range []struct {
		name string
		port int32
	}{{"jitprov-provisioner", 8081}, {"notifier", 8082}, {"jitprov-admin", 8083}, {"sso-edge", 8084}} {
		to := podLabelsOf(ws, m.name)
		if !ingressFrom(specific, to, prometheus, m.port) {
			t.Errorf("%s does not admit Prometheus (namespace monitoring) on its metrics port %d", m.name, m.port)
		}
		if ingressFrom(specific, to, elsewhere, m.port) {
			t.Errorf("%s admits any pod of the cluster on its metrics port %d: narrow it to the monitoring namespace", m.name, m.port)
		}
	}
	// Between NATS servers, routes both ways; HTTPS out for the edge (IdP
	// metadata) and the notifier (webhooks).
	if !egressTo(specific, natsLabels, local(natsLabels), 6222) || !ingressFrom(specific, natsLabels, local(natsLabels), 6222) {
		t.Error("NATS servers may not reach each other on 6222")
	}
	for _, name := range []string{"sso-edge", "notifier"} {
		if !egressTo(specific, podLabelsOf(ws, name), outside, 443) {
			t.Errorf("%s may not reach HTTPS (443) outside the cluster", name)
		}
	}
	if o.postgres {
		if !egressTo(specific, postgresLabels, local(postgresLabels), 5432) || !ingressFrom(specific, postgresLabels, local(postgresLabels), 5432) {
			t.Error("Postgres instances may not replicate from each other on 5432")
		}
		if !ingressFrom(specific, postgresLabels, cnpgOperator, 8000) {
			t.Error("the CloudNativePG operator may not reach the instances on 8000")
		}
	}
}

// The labels CloudNativePG gives the pods of Cluster jitprov-postgres.
var postgresLabels = map[string]string{"cnpg.io/cluster": "jitprov-postgres"}

func fmtPtr[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func podLabelsOf(ws []workload, name string) map[string]string {
	for _, w := range ws {
		if w.tmpl.Labels["app.kubernetes.io/name"] == name && w.kind != "Job" {
			return w.tmpl.Labels
		}
	}
	return nil
}

func selects(sel metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(&sel)
	return err == nil && s.Matches(labels.Set(l))
}

// peer is one end of a connection: pods with labels in a namespace (""
// for the overlay's own), or, with external, an address outside the
// cluster.
type peer struct {
	namespace string
	labels    map[string]string
	external  bool
}

func local(l map[string]string) peer { return peer{labels: l} }

var (
	outside      = peer{external: true}
	cnpgOperator = peer{namespace: "cnpg-system", labels: map[string]string{"app.kubernetes.io/name": "cloudnative-pg"}}
	// prometheus scrapes from the monitoring namespace (kube-prometheus-stack's);
	// elsewhere is any other pod of the cluster.
	prometheus = peer{namespace: "monitoring", labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	elsewhere  = peer{namespace: "tenant-app", labels: map[string]string{"app": "anything"}}
)

// peerMatches: does a rule's peer list admit p? Without a
// namespaceSelector a podSelector names pods of the policy's own
// namespace.
func peerMatches(peers []networkingv1.NetworkPolicyPeer, p peer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, r := range peers {
		if p.external {
			if r.IPBlock != nil {
				return true
			}
			continue
		}
		if r.IPBlock != nil {
			continue
		}
		if r.NamespaceSelector == nil {
			if p.namespace != "" {
				continue
			}
		} else if p.namespace == "" || !selects(*r.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": p.namespace}) {
			continue
		}
		if r.PodSelector == nil || selects(*r.PodSelector, p.labels) {
			return true
		}
	}
	return false
}

func portMatches(ports []networkingv1.NetworkPolicyPort, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pr := corev1.ProtocolTCP
		if p.Protocol != nil {
			pr = *p.Protocol
		}
		if pr != proto {
			continue
		}
		if p.Port == nil || (p.Port.Type == intstr.Int && p.Port.IntVal == port) ||
			(p.EndPort != nil && p.Port.Type == intstr.Int && p.Port.IntVal <= port && port <= *p.EndPort) {
			return true
		}
	}
	return false
}

func egressTo(nps []*networkingv1.NetworkPolicy, from map[string]string, to peer, port int32) bool {
	for _, np := range nps {
		if !selects(np.Spec.PodSelector, from) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			continue
		}
		for _, r := range np.Spec.Egress {
			if peerMatches(r.To, to) && portMatches(r.Ports, port, corev1.ProtocolTCP) {
				return true
			}
		}
	}
	return false
}

func egressAllows(nps []*networkingv1.NetworkPolicy, from map[string]string, port int32, proto corev1.Protocol) bool {
	for _, np := range nps {
		if !selects(np.Spec.PodSelector, from) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			continue
		}
		for _, r := range np.Spec.Egress {
			if portMatches(r.Ports, port, proto) {
				return true
			}
		}
	}
	return false
}

func ingressFrom(nps []*networkingv1.NetworkPolicy, to map[string]string, from peer, port int32) bool {
	for _, np := range nps {
		if !selects(np.Spec.PodSelector, to) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		for _, r := range np.Spec.Ingress {
			if peerMatches(r.From, from) && portMatches(r.Ports, port, corev1.ProtocolTCP) {
				return true
			}
		}
	}
	return false
}

// checkServices: every Service selects pods of the overlay, and every port
// it targets exists on them.
func checkServices(t *testing.T, objs []object, ws []workload) {
	t.Helper()
	for _, s := range find[corev1.Service](objs) {
		var matched []workload
		for _, w := range ws {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.tmpl.Labels)) {
				matched = append(matched, w)
			}
		}
		if len(matched) == 0 {
			t.Errorf("Service/%s selects no pods of the overlay", s.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			for _, w := range matched {
				if !hasPort(w.tmpl.Spec.Containers, p.TargetPort, p.Port) {
					t.Errorf("Service/%s port %s: %s/%s has no container port %s", s.Name, p.Name, w.kind, w.name, p.TargetPort.String())
				}
			}
		}
	}
}

func hasPort(cs []corev1.Container, target intstr.IntOrString, port int32) bool {
	for _, c := range cs {
		for _, cp := range c.Ports {
			switch {
			case target.Type == intstr.String && target.StrVal != "" && cp.Name == target.StrVal,
				target.Type == intstr.Int && target.IntVal == cp.ContainerPort,
				target.Type == intstr.Int && target.IntVal == 0 && cp.ContainerPort == port:
				return true
			}
		}
	}
	return false
}

// checkTelemetry: the collector is there, and every OTLP endpoint the
// overlay sets names one of its Services and ports.
func checkTelemetry(t *testing.T, objs []object, ns string) {
	t.Helper()
	var collector *appsv1.Deployment
	for _, d := range find[appsv1.Deployment](objs) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if strings.HasPrefix(c.Image, "otel/opentelemetry-collector-contrib:") {
				collector = d
			}
		}
	}
	if collector == nil {
		t.Error("no OpenTelemetry Collector Deployment")
		return
	}
	services := map[string]*corev1.Service{}
	for _, s := range find[corev1.Service](objs) {
		services[s.Name] = s
	}
	endpoints := 0
	for _, cm := range find[corev1.ConfigMap](objs) {
		for k, v := range cm.Data {
			if k != "OTEL_EXPORTER_OTLP_ENDPOINT" && k != "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" && k != "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" {
				continue
			}
			endpoints++
			u, err := url.Parse(v)
			if err != nil || u.Port() == "" {
				t.Errorf("ConfigMap/%s %s=%q: not a URL with a port", cm.Name, k, v)
				continue
			}
			host := u.Hostname()
			// otel-collector, otel-collector.<ns>, otel-collector.<ns>.svc[.cluster.local]
			svcName, rest, _ := strings.Cut(host, ".")
			if rest != "" && rest != ns && rest != ns+".svc" && rest != ns+".svc.cluster.local" {
				t.Errorf("ConfigMap/%s %s=%q: names namespace %q, not the overlay's %q", cm.Name, k, v, rest, ns)
				continue
			}
			s := services[svcName]
			if s == nil {
				t.Errorf("ConfigMap/%s %s=%q: no Service %s in the overlay", cm.Name, k, v, svcName)
				continue
			}
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return fmt.Sprint(p.Port) == u.Port() }) {
				t.Errorf("ConfigMap/%s %s=%q: Service %s has no port %s", cm.Name, k, v, svcName, u.Port())
				continue
			}
			if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(collector.Spec.Template.Labels)) {
				t.Errorf("ConfigMap/%s %s=%q: Service %s does not select the collector", cm.Name, k, v, svcName)
			}
		}
	}
	if endpoints == 0 {
		t.Error("no OTEL_EXPORTER_OTLP_ENDPOINT in any ConfigMap: the services export nowhere")
	}
	// Every service exports: a service left out records spans for nobody.
	for _, svc := range []string{"provisioner", "sso-edge", "notifier", "admin"} {
		found := false
		for _, cm := range find[corev1.ConfigMap](objs) {
			if strings.HasPrefix(cm.Name, "jitprov-"+svc+"-env") && cm.Data["OTEL_EXPORTER_OTLP_ENDPOINT"] != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("ConfigMap jitprov-%s-env has no OTEL_EXPORTER_OTLP_ENDPOINT: its spans and metrics go nowhere", svc)
		}
	}
	// The collector's configuration: OTLP on 4317 and 4318, memory_limiter
	// first, batch.
	var conf string
	for _, cm := range find[corev1.ConfigMap](objs) {
		if c, ok := cm.Data["collector.yaml"]; ok {
			conf = c
		}
	}
	var cc struct {
		Receivers struct {
			OTLP struct {
				Protocols struct {
					GRPC struct{ Endpoint string } `json:"grpc"`
					HTTP struct{ Endpoint string } `json:"http"`
				} `json:"protocols"`
			} `json:"otlp"`
		} `json:"receivers"`
		Service struct {
			Pipelines map[string]struct {
				Receivers  []string `json:"receivers"`
				Processors []string `json:"processors"`
				Exporters  []string `json:"exporters"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	if err := yaml.Unmarshal([]byte(conf), &cc); err != nil {
		t.Fatalf("collector.yaml: %v", err)
	}
	if !strings.HasSuffix(cc.Receivers.OTLP.Protocols.GRPC.Endpoint, ":4317") || !strings.HasSuffix(cc.Receivers.OTLP.Protocols.HTTP.Endpoint, ":4318") {
		t.Errorf("collector.yaml: OTLP receivers on %q and %q, want :4317 and :4318", cc.Receivers.OTLP.Protocols.GRPC.Endpoint, cc.Receivers.OTLP.Protocols.HTTP.Endpoint)
	}
	for _, name := range []string{"traces", "metrics"} {
		p, ok := cc.Service.Pipelines[name]
		if !ok {
			t.Errorf("collector.yaml: no %s pipeline", name)
			continue
		}
		if len(p.Processors) == 0 || p.Processors[0] != "memory_limiter" || !slices.Contains(p.Processors, "batch") {
			t.Errorf("collector.yaml: %s processors %v, want memory_limiter first and batch", name, p.Processors)
		}
		if len(p.Exporters) == 0 || !slices.Contains(p.Receivers, "otlp") {
			t.Errorf("collector.yaml: %s pipeline receivers %v exporters %v", name, p.Receivers, p.Exporters)
		}
	}
}

// checkMonitoring: a ServiceMonitor for every service, on a Service port
// that exists, the edge's metrics port, the PrometheusRule and the
// dashboard.
func checkMonitoring(t *testing.T, o overlay, objs []object, ws []workload) {
	t.Helper()
	// The metrics port contract: the edge serves /metrics on 8084, port
	// "metrics"; the others on their health ports.
	want := map[string]int32{"sso-edge": 8084, "jitprov-provisioner": 8081, "notifier": 8082, "jitprov-admin": 8083}
	wantName := map[string]string{"sso-edge": "metrics", "jitprov-provisioner": "health", "notifier": "health", "jitprov-admin": "health"}
	for name, port := range want {
		var found bool
		for _, w := range ws {
			if w.kind == "Deployment" && w.tmpl.Labels["app.kubernetes.io/name"] == name {
				for _, c := range w.tmpl.Spec.Containers {
					found = found || slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
						return p.Name == wantName[name] && p.ContainerPort == port
					})
				}
			}
		}
		if !found {
			t.Errorf("%s: no container port %s %d for /metrics", name, wantName[name], port)
		}
	}
	sms := find[serviceMonitor](objs)
	if !o.monitoring {
		if len(sms) > 0 {
			t.Errorf("ServiceMonitors in an overlay without monitoring")
		}
		return
	}
	services := find[corev1.Service](objs)
	for name := range want {
		var ok bool
		for _, sm := range sms {
			for _, s := range services {
				if !selects(sm.Spec.Selector, s.Labels) || s.Spec.Selector["app.kubernetes.io/name"] != name {
					continue
				}
				for _, ep := range sm.Spec.Endpoints {
					if slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port && p.Port == want[name] }) {
						ok = true
					}
				}
			}
		}
		if !ok {
			t.Errorf("no ServiceMonitor scrapes %s on port %d", name, want[name])
		}
	}
	for _, sm := range sms {
		var matched bool
		for _, s := range services {
			if selects(sm.Spec.Selector, s.Labels) {
				matched = true
				for _, ep := range sm.Spec.Endpoints {
					if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
						t.Errorf("ServiceMonitor/%s: Service %s has no port %q", sm.Metadata.Name, s.Name, ep.Port)
					}
				}
			}
		}
		if !matched {
			t.Errorf("ServiceMonitor/%s selects no Service", sm.Metadata.Name)
		}
	}
	rules := find[prometheusRule](objs)
	if len(rules) == 0 {
		t.Error("no PrometheusRule")
	}
	for _, r := range rules {
		if len(r.Spec.Groups) == 0 {
			t.Errorf("PrometheusRule/%s: no groups", r.Metadata.Name)
		}
		for _, g := range r.Spec.Groups {
			if g.Name == "" || len(g.Rules) == 0 {
				t.Errorf("PrometheusRule/%s: group %q empty or unnamed", r.Metadata.Name, g.Name)
			}
			for _, rl := range g.Rules {
				if (rl.Alert == "") == (rl.Record == "") || rl.Expr == nil {
					t.Errorf("PrometheusRule/%s group %s: a rule needs expr and exactly one of alert, record", r.Metadata.Name, g.Name)
				}
			}
		}
	}
	var dashboards int
	for _, cm := range find[corev1.ConfigMap](objs) {
		if cm.Labels["grafana_dashboard"] != "1" {
			continue
		}
		// kubectl apply (client-side) copies the object into an annotation
		// of at most 256 KiB: a bigger dashboard fails to apply.
		if size := len(fmt.Sprint(cm.Data)); size > 240<<10 {
			t.Errorf("ConfigMap/%s: %d bytes, too big for a client-side kubectl apply (256 KiB annotation); shrink the dashboard or split it", cm.Name, size)
		}
		for k, v := range cm.Data {
			dashboards++
			var d struct {
				Title string `json:"title"`
			}
			if err := json.Unmarshal([]byte(v), &d); err != nil || d.Title == "" {
				t.Errorf("ConfigMap/%s %s: not a dashboard with a title: %v", cm.Name, k, err)
			}
		}
	}
	if dashboards == 0 {
		t.Error(`no ConfigMap labelled grafana_dashboard: "1"`)
	}
}

// checkNATS: the fsync policy in the rendered nats.conf.
func checkNATS(t *testing.T, o overlay, objs []object) {
	t.Helper()
	var conf string
	for _, cm := range find[corev1.ConfigMap](objs) {
		if c, ok := cm.Data["nats.conf"]; ok {
			conf = c
		}
	}
	if conf == "" {
		t.Fatal("no nats.conf")
	}
	always := regexp.MustCompile(`(?m)^\s*sync_interval:\s*always\s*$`).MatchString(conf)
	if always != o.natsSyncAlways {
		t.Errorf("nats.conf: sync_interval: always is %t, want %t", always, o.natsSyncAlways)
	}
}

// The custom resources, as far as jitprov's manifests use them: decoding
// with DisallowUnknownFields catches a misspelt or misplaced field the
// operators would otherwise reject (or, worse, ignore).

type crMeta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
}

// cnpgCluster is postgresql.cnpg.io/v1 Cluster (CloudNativePG >= 1.24).
type cnpgCluster struct {
	crMeta `json:",inline"`
	Spec   struct {
		Instances             int    `json:"instances"`
		ImageName             string `json:"imageName"`
		PrimaryUpdateStrategy string `json:"primaryUpdateStrategy,omitempty"`
		EnableSuperuserAccess *bool  `json:"enableSuperuserAccess,omitempty"`
		Bootstrap             struct {
			InitDB struct {
				Database string `json:"database"`
				Owner    string `json:"owner"`
				Secret   struct {
					Name string `json:"name"`
				} `json:"secret"`
			} `json:"initdb"`
		} `json:"bootstrap"`
		PostgreSQL struct {
			Parameters  map[string]string `json:"parameters,omitempty"`
			Synchronous *struct {
				Method string `json:"method"`
				Number int    `json:"number"`
			} `json:"synchronous,omitempty"`
		} `json:"postgresql"`
		Managed struct {
			Roles []struct {
				Name            string   `json:"name"`
				Ensure          string   `json:"ensure,omitempty"`
				Comment         string   `json:"comment,omitempty"`
				Login           bool     `json:"login,omitempty"`
				InRoles         []string `json:"inRoles,omitempty"`
				ConnectionLimit int      `json:"connectionLimit,omitempty"`
				PasswordSecret  *struct {
					Name string `json:"name"`
				} `json:"passwordSecret,omitempty"`
			} `json:"roles"`
		} `json:"managed"`
		Storage struct {
			Size         string `json:"size"`
			StorageClass string `json:"storageClass,omitempty"`
		} `json:"storage"`
		WALStorage *struct {
			Size         string `json:"size"`
			StorageClass string `json:"storageClass,omitempty"`
		} `json:"walStorage,omitempty"`
		Resources corev1.ResourceRequirements `json:"resources"`
		Affinity  struct {
			EnablePodAntiAffinity *bool  `json:"enablePodAntiAffinity,omitempty"`
			PodAntiAffinityType   string `json:"podAntiAffinityType,omitempty"`
			TopologyKey           string `json:"topologyKey,omitempty"`
		} `json:"affinity"`
		TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	} `json:"spec"`
}

type monitorEndpoint struct {
	Port          string `json:"port"`
	Path          string `json:"path,omitempty"`
	Interval      string `json:"interval,omitempty"`
	ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
	Scheme        string `json:"scheme,omitempty"`
	HonorLabels   bool   `json:"honorLabels,omitempty"`
}

// serviceMonitor is monitoring.coreos.com/v1 ServiceMonitor.
type serviceMonitor struct {
	crMeta `json:",inline"`
	Spec   struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		JobLabel  string            `json:"jobLabel,omitempty"`
		Endpoints []monitorEndpoint `json:"endpoints"`
	} `json:"spec"`
}

// podMonitor is monitoring.coreos.com/v1 PodMonitor.
type podMonitor struct {
	crMeta `json:",inline"`
	Spec   struct {
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []monitorEndpoint    `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// prometheusRule is monitoring.coreos.com/v1 PrometheusRule.
type prometheusRule struct {
	crMeta `json:",inline"`
	Spec   struct {
		Groups []struct {
			Name                    string            `json:"name"`
			Interval                string            `json:"interval,omitempty"`
			QueryOffset             string            `json:"query_offset,omitempty"`
			Limit                   *int              `json:"limit,omitempty"`
			PartialResponseStrategy string            `json:"partial_response_strategy,omitempty"`
			Labels                  map[string]string `json:"labels,omitempty"`
			Rules                   []struct {
				Alert         string            `json:"alert,omitempty"`
				Record        string            `json:"record,omitempty"`
				Expr          any               `json:"expr"` // string or int, as the CRD allows
				For           string            `json:"for,omitempty"`
				KeepFiringFor string            `json:"keep_firing_for,omitempty"`
				Labels        map[string]string `json:"labels,omitempty"`
				Annotations   map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// scaledObject is keda.sh/v1alpha1 ScaledObject.
type scaledObject struct {
	crMeta `json:",inline"`
	Spec   struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval  *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod   *int32 `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount *int32 `json:"idleReplicaCount,omitempty"`
		MinReplicaCount  *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount  *int32 `json:"maxReplicaCount,omitempty"`
		Fallback         *struct {
			FailureThreshold int32 `json:"failureThreshold"`
			Replicas         int32 `json:"replicas"`
		} `json:"fallback,omitempty"`
		Advanced *struct {
			RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			MetricType        string            `json:"metricType,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

func TestPinned(t *testing.T) {
	for _, tc := range []struct {
		ref  string
		re   *regexp.Regexp
		want bool
	}{
		{"nats:2.12.15-alpine", patchTag, true},
		{"nats:2.12-alpine", patchTag, false},
		{"nats", patchTag, false},
		{"ghcr.io/jitprov/provisioner:latest", patchTag, false},
		{"ghcr.io/jitprov/provisioner:0.1.0", patchTag, true},
		{"localhost:5000/jitprov/provisioner", patchTag, false},
		{"ghcr.io/jitprov/provisioner@sha256:" + strings.Repeat("ab", 32), patchTag, true},
		{"otel/opentelemetry-collector-contrib:0.165.0", patchTag, true},
		{"ghcr.io/cloudnative-pg/postgresql:17", postgresTag, false},
		{"ghcr.io/cloudnative-pg/postgresql:17.12", postgresTag, true},
		{"ghcr.io/cloudnative-pg/postgresql:17.12-standard-bookworm", postgresTag, true},
	} {
		if got := pinned(tc.ref, tc.re) == ""; got != tc.want {
			t.Errorf("pinned(%q) = %t, want %t", tc.ref, got, tc.want)
		}
	}
}

// TestDecodeStrict: a misspelt field fails the decoding, for a typed
// Kubernetes kind and for a custom resource alike; so does an unknown kind.
func TestDecodeStrict(t *testing.T) {
	for _, y := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n",
		"apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: x}, minReplicas: 2}\n",
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n",
	} {
		if _, err := decode([]byte(y)); err == nil {
			t.Errorf("decode accepted:\n%s", y)
		}
	}
	if _, err := decode([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n")); err != nil {
		t.Errorf("decode refused a valid Deployment: %v", err)
	}
}
