"""The controller's request handlers (RocketMQ 5's ControllerRequestProcessor), served on the
NameServer's port: BROKER_HEARTBEAT (904) and CONTROLLER_* (1001-1006, 1009-1013).

Decisions go through ControllerService.decide; a controller that is not the active one answers
CONTROLLER_NOT_LEADER (2007), a consensus store out of reach SYSTEM_ERROR. With ACL on, all
of them need an admin account (server/acl/requests.py): brokers sign with one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable

from ...net import Dispatcher, RequestContext
from ...protocol import RemotingCommand, RequestCode, ResponseCode
from ...protocol.controller import (
    LOWEST_ELECTION_PRIORITY,
    AlterSyncStateSetRequestHeader,
    ApplyBrokerIdRequestHeader,
    BrokerHeartbeatRequestHeader,
    BrokerHeartbeatResponseHeader,
    CleanControllerBrokerDataRequestHeader,
    ElectMasterRequestHeader,
    GetMetaDataResponseHeader,
    GetNextBrokerIdRequestHeader,
    GetReplicaInfoRequestHeader,
    RegisterBrokerToControllerRequestHeader,
)
from ...protocol.controller_body import decode_broker_names, decode_sync_state_set
from ...protocol.header_codec import decode_header, encode_header
from . import replicas
from .lease import HEARTBEAT_TIMEOUT_MS
from .metastore import MetaStoreUnavailable
from .replicas import Decision
from .service import ControllerService, NotActive
from .state import BrokerSetState

log = logging.getLogger(__name__)

Handler = Callable[[RemotingCommand, RequestContext], Awaitable[RemotingCommand]]


def _answer(decision: Decision) -> RemotingCommand:
    ext = encode_header(decision.header) if decision.header is not None else None
    return RemotingCommand.response(decision.code, decision.remark, ext_fields=ext,
                                    body=decision.body)


class ControllerHandlers:
    def __init__(self, service: ControllerService) -> None:
        self._c = service

    def register(self, dispatcher: Dispatcher) -> None:
        C = RequestCode
        for code, handler in (
            (C.BROKER_HEARTBEAT, self.heartbeat),
            (C.CONTROLLER_ALTER_SYNC_STATE_SET, self._guarded(self.alter_sync_state_set)),
            (C.CONTROLLER_ELECT_MASTER, self._guarded(self.elect_master)),
            (C.CONTROLLER_REGISTER_BROKER, self._guarded(self.register_broker)),
            (C.CONTROLLER_GET_REPLICA_INFO, self._guarded(self.get_replica_info)),
            (C.CONTROLLER_GET_METADATA_INFO, self.get_metadata),
            (C.CONTROLLER_GET_SYNC_STATE_DATA, self._guarded(self.get_sync_state_data)),
            (C.UPDATE_CONTROLLER_CONFIG, self.update_config),
            (C.GET_CONTROLLER_CONFIG, self.get_config),
            (C.CLEAN_BROKER_DATA, self._guarded(self.clean_broker_data)),
            (C.CONTROLLER_GET_NEXT_BROKER_ID, self._guarded(self.next_broker_id)),
            (C.CONTROLLER_APPLY_BROKER_ID, self._guarded(self.apply_broker_id)),
        ):
            dispatcher.register(code, handler)

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
            if not self._c.active:
                return RemotingCommand.response(ResponseCode.CONTROLLER_NOT_LEADER,
                                                "The controller is not in leader state")
            try:
                return await handler(request, ctx)
            except NotActive:
                return RemotingCommand.response(ResponseCode.CONTROLLER_NOT_LEADER,
                                                "The controller is not in leader state")
            except MetaStoreUnavailable as exc:
                log.warning("controller: %s", exc)
                return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                                "the controller's consensus store is unreachable")
        return guarded

    # -- brokers -----------------------------------------------------------------------------
    async def heartbeat(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(BrokerHeartbeatRequestHeader, request.ext_fields)
        if h.broker_id is None:
            return RemotingCommand.response(ResponseCode.CONTROLLER_INVALID_REQUEST,
                                            "Heart beat with empty brokerId")
        epoch = -1 if h.epoch is None else h.epoch
        lease_ms = self._c.on_heartbeat(
            (h.cluster_name, h.broker_name, h.broker_id), h.broker_addr,
            HEARTBEAT_TIMEOUT_MS if h.heartbeat_timeout_ms is None else h.heartbeat_timeout_ms,
            ctx.channel, epoch, -1 if h.max_offset is None else h.max_offset,
            -1 if h.confirm_offset is None else h.confirm_offset,
            LOWEST_ELECTION_PRIORITY if h.election_priority is None else h.election_priority)
        ext = None
        if lease_ms is not None:
            ext = encode_header(BrokerHeartbeatResponseHeader(master_epoch=epoch,
                                                              lease_ms=lease_ms))
        return RemotingCommand.response(ResponseCode.SUCCESS, "Heart beat success",
                                        ext_fields=ext)

    async def alter_sync_state_set(self, request: RemotingCommand,
                                   ctx: RequestContext) -> RemotingCommand:
        h = decode_header(AlterSyncStateSetRequestHeader, request.ext_fields)
        try:
            proposed = decode_sync_state_set(request.body)
        except ValueError as exc:
            return RemotingCommand.response(ResponseCode.CONTROLLER_INVALID_REQUEST, str(exc))
        decision = await self._c.decide(h.broker_name, lambda s: replicas.alter_sync_state_set(
            s, h.master_broker_id, h.master_epoch, proposed,
            self._c.alive_in(s) if s is not None else _nobody))
        return _answer(decision)

    async def elect_master(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        h = decode_header(ElectMasterRequestHeader, request.ext_fields)
        c = self._c

        def rule(s: BrokerSetState | None) -> Decision:
            if s is not None and s.master is not None and s.master != h.broker_id and \
                    not c.may_replace(s) and not c.alive_in(s)(s.master):
                return Decision(ResponseCode.CONTROLLER_ELECT_MASTER_FAILED,
                                f"{s.broker_name}: the master's lease may still be valid")
            if h.designate_elect and s is not None and s.master is not None and \
                    s.master != h.broker_id and c.alive_in(s)(s.master):
                return Decision(ResponseCode.CONTROLLER_ELECT_MASTER_FAILED,
                                f"{s.broker_name}: the master {s.master} is alive and holds a "
                                "lease; stop it before designating another")
            live = c.live_in(s) if s is not None else _no_info
            return replicas.elect_master(s, h.broker_id, h.designate_elect, live,
                                         c.config.elect_unclean)
        decision = await c.decide(h.broker_name, rule)
        if decision.code == ResponseCode.SUCCESS:
            await c.notify_role_changed(h.broker_name)
        return _answer(decision)

    async def register_broker(self, request: RemotingCommand,
                              ctx: RequestContext) -> RemotingCommand:
        h = decode_header(RegisterBrokerToControllerRequestHeader, request.ext_fields)
        return _answer(await self._c.decide(h.broker_name, lambda s: replicas.register_broker(
            s, h.cluster_name, h.broker_name, h.broker_id, h.broker_address,
            self._c.alive_in(s) if s is not None else _nobody)))

    async def get_replica_info(self, request: RemotingCommand,
                               ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetReplicaInfoRequestHeader, request.ext_fields)
        return _answer(await self._c.decide(h.broker_name, replicas.replica_info))

    async def next_broker_id(self, request: RemotingCommand,
                             ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetNextBrokerIdRequestHeader, request.ext_fields)
        return _answer(await self._c.decide(h.broker_name, lambda s: replicas.next_broker_id(
            s, h.cluster_name, h.broker_name)))

    async def apply_broker_id(self, request: RemotingCommand,
                              ctx: RequestContext) -> RemotingCommand:
        h = decode_header(ApplyBrokerIdRequestHeader, request.ext_fields)
        return _answer(await self._c.decide(h.broker_name, lambda s: replicas.apply_broker_id(
            s, h.cluster_name, h.broker_name, h.applied_broker_id, h.register_check_code)))

    # -- admin -------------------------------------------------------------------------------
    async def get_metadata(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        leader = self._c.leadership.leader
        header = GetMetaDataResponseHeader(
            group=self._c.config.prefix, controller_leader_id=leader,
            controller_leader_address=leader, is_leader=self._c.active, peers="")
        return RemotingCommand.response(ResponseCode.SUCCESS, ext_fields=encode_header(header))

    async def get_sync_state_data(self, request: RemotingCommand,
                                  ctx: RequestContext) -> RemotingCommand:
        try:
            names = decode_broker_names(request.body)
        except ValueError as exc:
            return RemotingCommand.response(ResponseCode.CONTROLLER_INVALID_REQUEST, str(exc))
        states = {}
        for name in names:
            state, _ = await self._c.read(name)
            if state is not None:
                states[name] = state
        body = replicas.sync_state_data(states, lambda s, i: self._c.alive_in(s)(i))
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)

    async def clean_broker_data(self, request: RemotingCommand,
                                ctx: RequestContext) -> RemotingCommand:
        h = decode_header(CleanControllerBrokerDataRequestHeader, request.ext_fields)
        return _answer(await self._c.decide(h.broker_name, lambda s: replicas.clean_broker_data(
            s, h.broker_name, h.broker_controller_ids_to_clean, h.is_clean_living_broker,
            self._c.alive_in(s) if s is not None else _nobody)))

    async def get_config(self, request: RemotingCommand,
                         ctx: RequestContext) -> RemotingCommand:
        lines = [f"{f.name}={getattr(self._c.config, f.name)}"
                 for f in dataclasses.fields(self._c.config)]
        return RemotingCommand.response(ResponseCode.SUCCESS, body="\n".join(lines).encode())

    async def update_config(self, request: RemotingCommand,
                            ctx: RequestContext) -> RemotingCommand:
        return RemotingCommand.response(
            ResponseCode.NO_PERMISSION,
            "controller settings are read at start (namesrv.conf); restart to change them")


def _nobody(_broker_id: int) -> bool:
    return False


def _no_info(_broker_id: int) -> None:
    return None
