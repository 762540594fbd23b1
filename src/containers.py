"""The dependency-injection container: every long-lived object of the server.

The persistence backend is chosen once, here: `config.persistence` ("memory" without a
DATABASE_URL, "postgres" with one) selects each backend-specific provider. On Postgres
they share `database`, the one pool, which exists only once every table is set up.
Resources start on first use, dependencies first: start-up resolves `application`, and
`shutdown(container)` stops what started: the work first, then what it used.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

from dependency_injector import containers, providers

from src.services.agent import build_agent, create_chat_model
from src.services.assistants.repository import MemoryAssistantRepository, PostgresAssistantRepository
from src.services.assistants.service import AssistantService, init_default_assistants
from src.services.auth.builtin import build_builtin_auth, builtin_config
from src.services.auth.module import AuthModule, load_auth_object
from src.services.auth.visibility import ThreadVisibility
from src.services.crons.repository import MemoryCronRepository, PostgresCronRepository
from src.services.crons.schedule import SystemClock
from src.services.crons.scheduler import init_cron_scheduler
from src.services.crons.service import CronService
from src.services.crons.wakeup import CronWakeup
from src.services.egress import EgressGuard, Resolver
from src.services.graphs import GraphRegistry, load_graph_targets
from src.services.health import HealthService, MemoryBackend, PostgresBackend
from src.services.metrics import init_metrics, init_metrics_service
from src.services.persistence import MemorySaver, ThreadShardedSaver, init_postgres_store
from src.services.runs.executor import RunExecutor
from src.services.runs.notifier import Notifier, init_postgres_notifier
from src.services.runs.repository import MemoryRunRepository, PostgresRunRepository
from src.services.runs.service import RunLimits, init_run_service
from src.services.runs.stats import MemoryRunCounter, PostgresRunCounter
from src.services.runs.worker import QueueSettings, process_owner
from src.services.schema import init_database
from src.services.store.index import load_store_index
from src.services.store.memory import init_memory_store
from src.services.store.service import StoreService
from src.services.threads.repository import MemoryTables, MemoryThreadRepository, PostgresThreadRepository
from src.services.threads.retention import MemoryThreadRetention, PostgresThreadRetention, init_thread_sweeper
from src.services.threads.service import ThreadService
from src.services.webhooks import init_webhooks
from src.web.auth import AssistantGuard, AuthGate, CronGuard, RunGuard, StoreGuard, ThreadGuard
from src.web.cors import CorsPolicy
from src.web.pipeline import RequestLimits, RequestPipeline
from src.web.requests.runs import parse_run_request
from src.web.routes.assistants import AssistantRoutes
from src.web.routes.crons import CronRoutes
from src.web.routes.metrics import MetricsRoutes
from src.web.routes.runs import RunRoutes
from src.web.routes.store import StoreRoutes
from src.web.routes.system import SystemRoutes
from src.web.routes.threads import ThreadRoutes

T = TypeVar("T")


class Container(containers.DeclarativeContainer):
    """Load `config` from `src.settings.load_settings()`, then `await provide(container.application)`."""

    config = providers.Configuration(strict=True)

    # --- persistence: memory or Postgres, chosen by config.persistence ---
    # langgraph.json's store.index, its embeddings loaded (a bad one is a config error at start-up).
    store_index = providers.Singleton(load_store_index, spec=config.store.index, base_dir=config.config_dir)
    database = providers.Resource(
        init_database,
        url=config.database.url,
        min_size=config.database.pool_min_size,
        max_size=config.database.pool_max_size,
        timeout=config.database.pool_timeout,
        connect_timeout=config.database.connect_timeout,
        check_idle=config.database.pool_check_idle,
        store_index=store_index,
    )
    memory_tables = providers.Singleton(MemoryTables)
    checkpointer = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemorySaver),
        # One saver shard per pooled connection: more could only wait for a connection.
        postgres=providers.Singleton(ThreadShardedSaver, pool=database, shards=config.database.pool_max_size),
    )
    store = providers.Selector(
        config.persistence,
        memory=providers.Resource(init_memory_store, index=store_index, ttl=config.store.ttl),
        postgres=providers.Resource(init_postgres_store, pool=database, index=store_index, ttl=config.store.ttl),
    )
    thread_repository = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemoryThreadRepository, tables=memory_tables),
        postgres=providers.Singleton(PostgresThreadRepository, pool=database),
    )
    run_repository = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemoryRunRepository, tables=memory_tables),
        postgres=providers.Singleton(PostgresRunRepository, pool=database),
    )
    assistant_repository = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemoryAssistantRepository),
        postgres=providers.Singleton(PostgresAssistantRepository, pool=database),
    )
    thread_retention = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemoryThreadRetention, tables=memory_tables, checkpointer=checkpointer),
        postgres=providers.Singleton(PostgresThreadRetention, pool=database),
    )
    cron_repository = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemoryCronRepository, tables=memory_tables),
        postgres=providers.Singleton(PostgresCronRepository, pool=database),
    )
    run_counter = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemoryRunCounter, tables=memory_tables),
        postgres=providers.Singleton(PostgresRunCounter, pool=database),
    )
    pool_or_none = providers.Selector(config.persistence, memory=providers.Object(None), postgres=database)
    backend = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemoryBackend),
        postgres=providers.Singleton(PostgresBackend, pool=database),
    )

    # --- metrics: one registry per container (several processes: see src/services/metrics.py) ---
    metrics = providers.Resource(init_metrics, multiprocess_dir=config.metrics.multiprocess_dir)

    # --- graphs ---
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

    # --- services ---
    thread_service = providers.Singleton(
        ThreadService, repository=thread_repository, graphs=graphs, checkpointer=checkpointer
    )
    assistant_service = providers.Singleton(AssistantService, repository=assistant_repository, graphs=graphs)
    default_assistants = providers.Resource(init_default_assistants, service=assistant_service)
    egress_guard = providers.Singleton(
        EgressGuard, allowed_hosts=config.runs.webhooks_allowed_hosts, resolver=providers.Singleton(Resolver)
    )
    webhooks = providers.Resource(init_webhooks, guard=egress_guard)
    # This process among those sharing the database (created in each process, after a fork).
    owner = providers.Singleton(process_owner)
    run_notifier = providers.Selector(
        config.persistence,
        memory=providers.Singleton(Notifier),
        postgres=providers.Resource(
            init_postgres_notifier,
            url=config.database.url,
            runs=run_repository,
            connect_timeout=config.database.connect_timeout,
        ),
    )
    run_executor = providers.Singleton(
        RunExecutor,
        graphs=graphs,
        runs=run_repository,
        checkpointer=checkpointer,
        notifier=run_notifier,
        owner=owner,
    )
    run_service = providers.Resource(
        init_run_service,
        threads=thread_repository,
        runs=run_repository,
        executor=run_executor,
        assistants=assistant_service,
        webhooks=webhooks,
        checkpointer=checkpointer,
        notifier=run_notifier,
        limits=providers.Singleton(
            RunLimits,
            max_concurrency=config.runs.max_concurrency,
            max_events_per_run=config.runs.max_events_per_run,
            finished_kept=config.runs.finished_kept,
            finished_kept_seconds=config.runs.finished_kept_seconds,
            hand_back_on_stop=providers.Selector(
                config.persistence, memory=providers.Object(False), postgres=providers.Object(True)
            ),
        ),
        queue=providers.Singleton(
            QueueSettings,
            lease_seconds=config.runs.lease_seconds,
            heartbeat_seconds=config.runs.heartbeat_seconds,
            poll_seconds=config.runs.poll_seconds,
            max_attempts=config.runs.max_attempts,
        ),
        owner=owner,
        observer=metrics,
    )
    # langgraph.json's checkpointer.ttl: expired threads deleted or pruned in the background.
    thread_sweeper = providers.Selector(
        config.thread_ttl,
        off=providers.Object(None),
        on=providers.Resource(
            init_thread_sweeper, retention=thread_retention, checkpointer=checkpointer, ttl=config.checkpointer.ttl
        ),
    )
    # --- crons: stored with the runs' records, fired by one scheduler task per process ---
    cron_clock = providers.Singleton(SystemClock)
    cron_wakeup = providers.Singleton(CronWakeup)
    cron_service = providers.Singleton(
        CronService,
        crons=cron_repository,
        assistants=assistant_service,
        threads=thread_repository,
        webhooks=webhooks,
        clock=cron_clock,
        wakeup=cron_wakeup,
    )
    cron_scheduler = providers.Resource(
        init_cron_scheduler,
        crons=cron_repository,
        runs=run_service,
        parse_run=providers.Object(parse_run_request),
        clock=cron_clock,
        wakeup=cron_wakeup,
        poll_seconds=config.crons.poll_seconds,
        metrics=metrics,
    )
    health_service = providers.Singleton(HealthService, backend=backend, graphs=graphs, auth=config.auth.mode)
    metrics_service = providers.Resource(init_metrics_service, metrics=metrics, runs=run_counter, pool=pool_or_none)
    store_service = providers.Singleton(StoreService, store=store)

    # --- auth: off, a user's Auth object (auth.path) or the ready-made one, chosen by config.auth.mode ---
    auth_object = providers.Selector(
        config.auth.mode,
        off=providers.Object(None),
        custom=providers.Singleton(load_auth_object, spec=config.auth.path, base_dir=config.config_dir),
        builtin=providers.Singleton(
            build_builtin_auth,
            config=providers.Singleton(builtin_config, section=config.auth, base_dir=config.config_dir),
        ),
    )
    auth_module = providers.Singleton(AuthModule, auth=auth_object, timeout=config.auth.timeout)
    thread_visibility = providers.Singleton(ThreadVisibility, threads=thread_repository)

    # --- the web layer: route classes get their services here; the pipeline wraps every handler ---
    cors_policy = providers.Singleton(CorsPolicy.from_settings, config.http.cors)
    request_limits = providers.Singleton(
        RequestLimits,
        allowed_hosts=providers.Callable(tuple, config.server.allowed_hosts),
        max_body_bytes=config.server.max_body_bytes,
    )
    request_pipeline = providers.Singleton(
        RequestPipeline,
        cors=cors_policy,
        access_log=config.server.access_log,
        limits=request_limits,
        metrics=metrics,
        auth=providers.Singleton(AuthGate, auth=auth_module),
    )
    system_routes = providers.Singleton(SystemRoutes, health=health_service)
    metrics_routes = providers.Singleton(MetricsRoutes, metrics=metrics_service)
    assistant_routes = providers.Singleton(
        AssistantRoutes,
        assistants=assistant_service,
        guard=providers.Singleton(AssistantGuard, auth=auth_module, assistants=assistant_service),
    )
    thread_routes = providers.Singleton(
        ThreadRoutes, threads=thread_service, guard=providers.Singleton(ThreadGuard, auth=auth_module)
    )
    run_guard = providers.Singleton(RunGuard, auth=auth_module, threads=thread_visibility, assistants=assistant_service)
    run_routes = providers.Singleton(RunRoutes, runs=run_service, guard=run_guard)
    store_routes = providers.Singleton(
        StoreRoutes, store=store_service, guard=providers.Singleton(StoreGuard, auth=auth_module)
    )
    cron_routes = providers.Singleton(
        CronRoutes,
        crons=cron_service,
        guard=providers.Singleton(CronGuard, auth=auth_module, runs=run_guard, assistants=assistant_service),
    )
    route_objects = providers.List(
        system_routes, metrics_routes, assistant_routes, thread_routes, run_routes, cron_routes, store_routes
    )

    # What start-up brings up before the first request: each served graph's default assistant and
    # the background tasks, then every route with its services.
    background = providers.List(default_assistants, thread_sweeper, cron_scheduler)
    application = providers.List(background, route_objects)


async def provide(provider: providers.Provider[T]) -> T:
    """The provider's object; a provider that depends on an async resource returns an awaitable."""
    result: Any = provider()
    return cast(T, await result if inspect.isawaitable(result) else result)


async def resolved(result: Awaitable[None] | None) -> None:
    """Await what the container returns: an awaitable when any resource is async."""
    if result is not None:
        await result


async def shutdown(container: Container) -> None:
    """Stop what started: the work that writes to the database first (cron firings, thread
    sweeps, then runs, which are handed back to the queue), then every other resource.

    dependency-injector orders a shutdown by the resources' direct references only, and the
    pool reaches the run service through singletons (its repositories): left to that order,
    the pool could close while runs are still being handed back.
    """
    for provider in (container.cron_scheduler, container.thread_sweeper, container.run_service):
        for resource in _resources(provider):
            if resource.initialized:
                await resolved(resource.shutdown())
    await resolved(container.shutdown_resources())


def _resources(provider: providers.Provider[Any]) -> list[providers.Resource[Any]]:
    """The provider itself when it is a resource, or the resources a selector chooses from."""
    if isinstance(provider, providers.Resource):
        return [provider]
    if isinstance(provider, providers.Selector):
        return [option for option in provider.providers.values() if isinstance(option, providers.Resource)]
    return []
