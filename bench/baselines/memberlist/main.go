// A minimal memberlist agent for the membership benchmark's baseline: one hashicorp/memberlist
// node with DefaultLANConfig on loopback, printing one JSON line per membership event.
// Built by bench/membership.ts with Debian's golang-github-hashicorp-memberlist-dev:
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/memberlist-agent main.go
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

type events struct{ enc *json.Encoder }

func (e *events) emit(kind string, n *memberlist.Node) {
	_ = e.enc.Encode(map[string]interface{}{"event": kind, "node": n.Name, "t": time.Now().UnixMilli()})
}
func (e *events) NotifyJoin(n *memberlist.Node)   { e.emit("join", n) }
func (e *events) NotifyLeave(n *memberlist.Node)  { e.emit("leave", n) }
func (e *events) NotifyUpdate(n *memberlist.Node) {}

func main() {
	name := flag.String("name", "", "node name")
	port := flag.Int("port", 0, "bind port on 127.0.0.1")
	join := flag.String("join", "", "address to join (host:port)")
	flag.Parse()
	ev := &events{enc: json.NewEncoder(os.Stdout)}
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = *name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = *port
	cfg.AdvertisePort = *port
	cfg.Events = ev
	cfg.LogOutput = io.Discard
	cfg.Logger = nil
	list, err := memberlist.Create(cfg)
	if err != nil {
		log.Fatalf("create: %v", err)
	}
	if *join != "" {
		for {
			if _, err := list.Join([]string{*join}); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	fmt.Printf("{\"event\":\"ready\",\"port\":%d}\n", list.LocalNode().Port)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = list.Leave(time.Second)
	_ = list.Shutdown()
}
