/* The pod's network parameters from its config (port mappings, bandwidth) and its CNI
 * attachment: what RunPodSandbox's ADD and every DEL pass alike. */
#include "server/pod/sandbox_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

/* The attachment of the pod to its network with every runtime config of its pod config (port
 * mappings, bandwidth, DNS, pod CIDR): ADD and every DEL pass the same, as libcni's callers
 * do.  a points into sb, p and cidr. */
void sandbox_fill_attachment(struct sandbox *sb, const struct run_params *p, const char *cidr,
                             struct cni_attachment *a)
{
    memset(a, 0, sizeof(*a));
    a->container_id = sb->id;
    a->netns = sb->netns && cni_ns_is_pinned(sb->netns) ? sb->netns : "";
    a->ifname = "eth0";
    a->pod_name = sb->config->metadata->name;
    a->pod_namespace = sb->config->metadata->namespace_;
    a->pod_uid = sb->config->metadata->uid;
    a->port_mappings = p->ports;
    a->n_port_mappings = p->n_ports;
    a->bandwidth = p->have_bw ? &p->bw : NULL;
    a->pod_cidr = cidr;
    const Runtime__V1__DNSConfig *dns = sb->config->dns_config;
    if (dns) {
        a->dns_servers = (const char *const *)dns->servers;
        a->n_dns_servers = dns->n_servers;
        a->dns_searches = (const char *const *)dns->searches;
        a->n_dns_searches = dns->n_searches;
        a->dns_options = (const char *const *)dns->options;
        a->n_dns_options = dns->n_options;
    }
}

static const char *proto_name(Runtime__V1__Protocol p)
{
    switch (p) {
    case RUNTIME__V1__PROTOCOL__UDP:
        return "udp";
    case RUNTIME__V1__PROTOCOL__SCTP:
        return "sctp";
    default:
        return "tcp";
    }
}

/* "10M", "1Gi", "500k" → bits per second (kubelet's bandwidth annotations). */
uint64_t sandbox_parse_quantity(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return 0;
    static const struct {
        const char *suf;
        double mul;
    } sufs[] = {{"Ki", 1024.0},
                {"Mi", 1024.0 * 1024},
                {"Gi", 1024.0 * 1024 * 1024},
                {"Ti", 1024.0 * 1024 * 1024 * 1024},
                {"k", 1e3},
                {"K", 1e3},
                {"M", 1e6},
                {"G", 1e9},
                {"T", 1e12},
                {"", 1}};
    for (size_t i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
        if (strcmp(end, sufs[i].suf) == 0)
            return (uint64_t)(v * sufs[i].mul);
    return 0;
}

const char *sandbox_annotation(const Runtime__V1__PodSandboxConfig *c, const char *key)
{
    for (size_t i = 0; i < c->n_annotations; i++)
        if (strcmp(c->annotations[i]->key, key) == 0)
            return c->annotations[i]->value;
    return NULL;
}

/* The pod's port mappings and bandwidth (the CNI capability arguments) from its config: at
 * RunPodSandbox, and again for every DEL, so a DEL without a cached result (a crash before
 * the cache was written) still names the host ports portmap must release. */
int sandbox_network_params(const Runtime__V1__PodSandboxConfig *c, struct run_params *p,
                           hull_error_t *err)
{
    if (c->n_port_mappings) {
        p->ports = xmalloc0(c->n_port_mappings * sizeof(*p->ports));
        for (size_t i = 0; i < c->n_port_mappings; i++) {
            const Runtime__V1__PortMapping *pm = c->port_mappings[i];
            if (pm->container_port <= 0 || pm->container_port > 65535 || pm->host_port < 0 ||
                pm->host_port > 65535)
                return hull_error_setx(err, EINVAL, "RunPodSandbox: invalid port mapping %d:%d",
                                       pm->host_port, pm->container_port);
            if (pm->host_ip && *pm->host_ip) {
                unsigned char buf[16];
                if (inet_pton(AF_INET, pm->host_ip, buf) != 1 &&
                    inet_pton(AF_INET6, pm->host_ip, buf) != 1)
                    return hull_error_setx(err, EINVAL,
                                           "RunPodSandbox: invalid port mapping host_ip \"%s\"",
                                           pm->host_ip);
            }
            if (pm->host_port == 0)
                continue; /* nothing to publish */
            p->ports[p->n_ports++] = (struct cni_port_mapping){
                .host_port = pm->host_port,
                .container_port = pm->container_port,
                .protocol = proto_name(pm->protocol),
                .host_ip = pm->host_ip,
            };
        }
    }
    const char *in = sandbox_annotation(c, "kubernetes.io/ingress-bandwidth");
    const char *out = sandbox_annotation(c, "kubernetes.io/egress-bandwidth");
    if (in || out) {
        p->bw.ingress_rate = sandbox_parse_quantity(in);
        p->bw.egress_rate = sandbox_parse_quantity(out);
        if ((in && !p->bw.ingress_rate) || (out && !p->bw.egress_rate))
            return hull_error_setx(err, EINVAL, "RunPodSandbox: invalid bandwidth annotation");
        p->bw.ingress_burst = p->bw.egress_burst = 4294967295ULL; /* CRI-O's default burst */
        p->have_bw = true;
    }
    return 0;
}
