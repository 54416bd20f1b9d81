// hull-nri-plugin: a small NRI plugin for Hull's tests, on the containerd/nri v0.12.2 stub.
// It logs every event it gets (one line per event to -events) and adjusts each container it is
// asked to create as its flags say: an environment variable, an annotation, a bind mount and a
// device node.  -fail-create makes CreateContainer answer an error; -exit-on EVENT makes the process
// exit in the middle of that event (a plugin crash).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"golang.org/x/sys/unix"
)

type plugin struct {
	mu         sync.Mutex
	events     *os.File
	env        []string
	annotation []string
	mounts     []string
	devices    []string
	failCreate bool
	exitOn     string
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func (p *plugin) record(ev string, pod *api.PodSandbox, ctr *api.Container) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := ev + " pod=" + pod.GetId()
	if ctr != nil {
		line += " ctr=" + ctr.GetId() + " name=" + ctr.GetName()
	}
	if p.events != nil {
		fmt.Fprintln(p.events, line)
		p.events.Sync()
	}
	if p.exitOn == ev {
		os.Exit(3)
	}
}

func (p *plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.record(fmt.Sprintf("Synchronize pods=%d containers=%d", len(pods), len(ctrs)), nil, nil)
	return nil, nil
}

func (p *plugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox", pod, nil)
	return nil
}

func (p *plugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox", pod, nil)
	return nil
}

func (p *plugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox", pod, nil)
	return nil
}

func (p *plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer", pod, ctr)
	if p.failCreate {
		return nil, nil, fmt.Errorf("hull-nri-plugin refuses container %s", ctr.GetName())
	}
	adj := &api.ContainerAdjustment{}
	for _, kv := range p.env {
		k, v, _ := strings.Cut(kv, "=")
		adj.AddEnv(k, v)
	}
	for _, kv := range p.annotation {
		k, v, _ := strings.Cut(kv, "=")
		adj.AddAnnotation(k, v)
	}
	for _, m := range p.mounts {
		src, dst, _ := strings.Cut(m, ":")
		adj.AddMount(&api.Mount{Source: src, Destination: dst, Type: "bind",
			Options: []string{"rbind", "ro"}})
	}
	for _, d := range p.devices {
		host, path, ok := strings.Cut(d, ":")
		if !ok {
			path = host
		}
		var st unix.Stat_t
		if err := unix.Stat(host, &st); err != nil {
			return nil, nil, err
		}
		typ := "c"
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			typ = "b"
		}
		adj.AddDevice(&api.LinuxDevice{Path: path, Type: typ, Major: int64(unix.Major(uint64(st.Rdev))),
			Minor: int64(unix.Minor(uint64(st.Rdev))), FileMode: api.FileMode(0o666)})
	}
	return adj, nil, nil
}

func (p *plugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record("StartContainer", pod, ctr)
	return nil
}

func (p *plugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer", pod, ctr)
	return nil, nil
}

func (p *plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record("RemoveContainer", pod, ctr)
	return nil
}

func main() {
	p := &plugin{}
	var env, ann, mounts, devs list
	socket := flag.String("socket", "/var/run/nri/nri.sock", "NRI socket of the runtime")
	name := flag.String("name", "hull-test", "plugin name")
	idx := flag.String("idx", "50", "plugin index (two digits)")
	events := flag.String("events", "", "file every event is appended to")
	flag.Var(&env, "env", "KEY=VALUE added to each container's environment (repeatable)")
	flag.Var(&ann, "annotation", "KEY=VALUE annotation added to each container (repeatable)")
	flag.Var(&mounts, "mount", "HOSTPATH:CONTAINERPATH read-only bind mount (repeatable)")
	flag.Var(&devs, "device", "HOSTNODE[:CONTAINERPATH] device node injected (repeatable)")
	flag.BoolVar(&p.failCreate, "fail-create", false, "answer CreateContainer with an error")
	flag.StringVar(&p.exitOn, "exit-on", "", "exit (status 3) while handling this event")
	flag.Parse()
	p.env, p.annotation, p.mounts, p.devices = env, ann, mounts, devs
	if *events != "" {
		f, err := os.OpenFile(*events, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		p.events = f
	}
	s, err := stub.New(p, stub.WithPluginName(*name), stub.WithPluginIdx(*idx),
		stub.WithSocketPath(*socket), stub.WithOnClose(func() { os.Exit(0) }))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
