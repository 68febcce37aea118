//! The cluster's Redis in the loop: its readiness events, its turn (the
//! turn's lines sent, one call per room; clocks), and what it reports,
//! applied to the chat. Nothing here runs without `--cluster`.

use super::EventLoop;
use crate::cluster::{Cluster, ClusterEvent};
use log::warn;
use mio::Token;

impl EventLoop {
    /// A readiness event on one of the cluster's connections.
    pub(super) fn cluster_ready(&mut self, token: Token) {
        if let Cluster::Redis(redis) = &mut self.cluster {
            redis.ready(token, self.poll.registry(), self.now);
        }
    }

    /// Once per turn, after the turn's input: sends what the chat gave the
    /// cluster, runs its clocks, and applies what it reported.
    pub(super) fn cluster_turn(&mut self) {
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        redis.turn(self.poll.registry(), self.now);
        for event in redis.take_events() {
            self.cluster_event(event);
        }
    }

    fn cluster_event(&mut self, event: ClusterEvent) {
        if let ClusterEvent::Lost { room, from, to } = event {
            warn!("cluster: lines {from} to {to} of {room} were lost before this server got them");
        }
    }
}
