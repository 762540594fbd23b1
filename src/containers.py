"""The dependency-injection container: every long-lived object of the server."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

from dependency_injector import containers, providers

from src.services.agent import build_agent, create_chat_model
from src.services.assistants import AssistantService, init_assistant_repository
from src.services.database import init_pool
from src.services.egress import EgressGuard, Resolver
from src.services.graphs import GraphRegistry, load_graph_targets
from src.services.health import HealthService
from src.services.persistence import init_checkpointer, init_store
from src.services.repository import init_repository
from src.services.runs import init_run_service
from src.services.store_api import StoreService
from src.services.threads import ThreadService
from src.services.webhooks import init_webhooks
from src.web.cors import CorsPolicy
from src.web.pipeline import RequestPipeline
from src.web.routes.assistants import AssistantRoutes
from src.web.routes.runs import RunRoutes
from src.web.routes.store import StoreRoutes
from src.web.routes.system import SystemRoutes
from src.web.routes.threads import ThreadRoutes

T = TypeVar("T")


class Container(containers.DeclarativeContainer):
    """Load `config` from `src.settings.load_settings()`, then `await init_resources()`.

    With no database URL the pool resource yields None and every resource below it
    picks its in-memory variant; with one, they all share the one pool.
    """

    config = providers.Configuration(strict=True)

    pool = providers.Resource(
        init_pool,
        url=config.database.url,
        min_size=config.database.pool_min_size,
        max_size=config.database.pool_max_size,
        timeout=config.database.pool_timeout,
        connect_timeout=config.database.connect_timeout,
        check_idle=config.database.pool_check_idle,
    )
    # One saver shard per pooled connection: more could only wait for a connection.
    checkpointer = providers.Resource(init_checkpointer, pool=pool, shards=config.database.pool_max_size)
    store = providers.Resource(init_store, pool=pool)
    repository = providers.Resource(init_repository, pool=pool)
    # Depends on `repository` so that its resource has run the migrations that create these tables.
    assistant_repository = providers.Resource(init_assistant_repository, pool=pool, repository=repository)

    chat_model = providers.Singleton(
        create_chat_model,
        name=config.model.name,
        base_url=config.model.base_url,
        api_key=config.model.api_key,
    )
    agent_graph = providers.Singleton(build_agent, model=chat_model)
    graph_targets = providers.Singleton(
        load_graph_targets,
        specs=config.graphs,
        base_dir=config.config_dir,
        builtin_agent=agent_graph,
    )
    graphs = providers.Singleton(GraphRegistry, targets=graph_targets, checkpointer=checkpointer, store=store)

    thread_service = providers.Singleton(ThreadService, repository=repository, graphs=graphs, checkpointer=checkpointer)
    assistant_service = providers.Singleton(AssistantService, repository=assistant_repository, graphs=graphs)
    egress_guard = providers.Singleton(
        EgressGuard, allowed_hosts=config.runs.webhooks_allowed_hosts, resolver=providers.Singleton(Resolver)
    )
    webhooks = providers.Resource(init_webhooks, guard=egress_guard)
    run_service = providers.Resource(
        init_run_service,
        repository=repository,
        graphs=graphs,
        assistants=assistant_service,
        webhooks=webhooks,
        checkpointer=checkpointer,
        max_concurrency=config.runs.max_concurrency,
    )
    health_service = providers.Singleton(HealthService, pool=pool, graphs=graphs)
    store_service = providers.Singleton(StoreService, store=store)

    # The web layer: route classes get their services here; the pipeline wraps every handler.
    cors_policy = providers.Singleton(CorsPolicy.from_settings, config.http.cors)
    request_pipeline = providers.Singleton(RequestPipeline, cors=cors_policy, access_log=config.server.access_log)
    system_routes = providers.Singleton(SystemRoutes, health=health_service)
    assistant_routes = providers.Singleton(AssistantRoutes, assistants=assistant_service)
    thread_routes = providers.Singleton(ThreadRoutes, threads=thread_service)
    run_routes = providers.Singleton(RunRoutes, runs=run_service)
    store_routes = providers.Singleton(StoreRoutes, store=store_service)
    route_objects = providers.List(system_routes, assistant_routes, thread_routes, run_routes, store_routes)


async def provide(provider: providers.Provider[T]) -> T:
    """The provider's object; a provider that depends on an async resource returns an awaitable."""
    result: Any = provider()
    return await result if inspect.isawaitable(result) else result


async def resolved(result: Awaitable[None] | None) -> None:
    """Await what the container returns: an awaitable when any resource is async."""
    if result is not None:
        await result
