package io.quotaauthority;

import io.grpc.BindableService;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.admin.BudgetPeriodReadBack;
import io.quotaauthority.admin.KeyAdmin;
import io.quotaauthority.admin.KeyAdminService;
import io.quotaauthority.admin.UsageReadBack;
import io.quotaauthority.authz.AuthorizationService;
import io.quotaauthority.authz.Authorizer;
import io.quotaauthority.config.AdminTokens;
import io.quotaauthority.config.Settings;
import io.quotaauthority.config.TokenFile;
import io.quotaauthority.console.AdminBridge;
import io.quotaauthority.console.ConsoleServer;
import io.quotaauthority.grpc.BearerCredentials;
import io.quotaauthority.grpc.BearerTokenInterceptor;
import io.quotaauthority.grpc.MalformedRequests;
import io.quotaauthority.grpc.ServerTls;
import io.quotaauthority.grpc.Transport;
import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.PendingUsage;
import io.quotaauthority.keys.UsageWindows;
import io.quotaauthority.metering.ExtProcService;
import io.quotaauthority.metering.MeteringExecutor;
import io.quotaauthority.metering.MeteringRefusals;
import io.quotaauthority.metering.ReloadingPriceTable;
import io.quotaauthority.metering.UsageCharger;
import io.quotaauthority.ops.Metrics;
import io.quotaauthority.ops.Operations;
import io.quotaauthority.ops.Readiness;
import io.quotaauthority.store.BudgetPeriods;
import io.quotaauthority.store.ClusterSecrets;
import io.quotaauthority.store.Database;
import io.quotaauthority.store.KeyChangeListener;
import io.quotaauthority.store.KeyRepository;
import io.quotaauthority.store.LeaseRepository;
import io.quotaauthority.store.RateRepository;
import io.quotaauthority.store.Transactions;
import io.quotaauthority.store.UsageRepository;
import io.quotaauthority.threads.DaemonThreads;
import io.quotaauthority.usage.BudgetLeases;
import io.quotaauthority.usage.HoldIds;
import io.quotaauthority.usage.RatePermits;
import io.quotaauthority.usage.ReporterHolds;
import io.quotaauthority.usage.Retries;
import io.quotaauthority.usage.UsageBatcher;
import io.quotaauthority.usage.UsageOutcome;
import io.quotaauthority.usage.UsageService;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The composition root: wires every part from {@link Settings}, starts the three gRPC servers
 * (authz, metering, admin), and owns the order of shutdown (health NOT_SERVING → usage streams stop
 * taking reports → stop taking calls → wait (usage streams end once their reports are answered) →
 * force → commit what is still queued → close the pool).
 */
public final class QuotaAuthority implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(QuotaAuthority.class);

  private final Settings settings;
  private final Database database;
  private final ThreadPoolExecutor keyLoader;
  private final Retries scheduler;
  private final UsageBatcher batcher;

  /** This instance's holds and budget leases; null when QUOTA_HOLDS is off. */
  private final BudgetLeases leases;

  /** This instance's concurrency slots of capped keys; null when QUOTA_HOLDS is off. */
  private final BudgetLeases slots;

  /** Holds Check takes for usage-stream reporters; null when QUOTA_HOLDS is off. */
  private final ReporterHolds reporterHolds;

  private final UsageService usageService;
  private final KeyChangeListener listener;

  /** Rolls keys' budget periods over (README "Key policies"). */
  private final BudgetPeriods budgetPeriods;

  private final ReloadingPriceTable prices;
  private final MeteringExecutor meteringWork;
  private final HealthStatusManager health;
  private final HealthStatusManager authzHealth;
  private final Server authzServer;
  private final Server meteringServer;
  private final Server adminServer;
  private final KeyCache cache;
  private final PendingUsage pendingUsage;
  private final Operations ops;

  /** The console's in-process admin server and the bridge's channel to it; null when it is off. */
  private final Server consoleBackend;

  private final ManagedChannel consoleChannel;
  private final ThreadPoolExecutor consoleWork;
  private ConsoleServer console;
  private boolean closed;

  private QuotaAuthority(
      Settings settings,
      Database database,
      ThreadPoolExecutor keyLoader,
      Retries scheduler,
      UsageBatcher batcher,
      BudgetLeases leases,
      BudgetLeases slots,
      ReporterHolds reporterHolds,
      UsageService usageService,
      KeyChangeListener listener,
      ReloadingPriceTable prices,
      MeteringExecutor meteringWork,
      HealthStatusManager authzHealth,
      HealthStatusManager health,
      Server authzServer,
      Server meteringServer,
      Server adminServer,
      KeyCache cache,
      PendingUsage pendingUsage,
      Operations ops,
      Server consoleBackend,
      ManagedChannel consoleChannel,
      ThreadPoolExecutor consoleWork,
      BudgetPeriods budgetPeriods) {
    this.consoleBackend = consoleBackend;
    this.consoleChannel = consoleChannel;
    this.consoleWork = consoleWork;
    this.budgetPeriods = budgetPeriods;
    this.listener = listener;
    this.prices = prices;
    this.meteringWork = meteringWork;
    this.settings = settings;
    this.database = database;
    this.keyLoader = keyLoader;
    this.scheduler = scheduler;
    this.batcher = batcher;
    this.leases = leases;
    this.slots = slots;
    this.reporterHolds = reporterHolds;
    this.usageService = usageService;
    this.health = health;
    this.authzHealth = authzHealth;
    this.authzServer = authzServer;
    this.meteringServer = meteringServer;
    this.adminServer = adminServer;
    this.cache = cache;
    this.pendingUsage = pendingUsage;
    this.ops = ops;
  }

  /**
   * Reads every input, opens the database (migrating it), builds every part, then starts them in
   * order. Safe to fail at any step: whatever can be refused on bad input (tokens, TLS files, the
   * price table) is read before anything is opened; nothing starts a thread while it is built; and
   * what was opened or started before a failure is closed again before the failure is thrown.
   */
  public static QuotaAuthority start(Settings settings, Clock clock) throws IOException {
    // ---- 1. Inputs: each can fail on what the operator gave; nothing is open yet.
    // Every admin token, named (QUOTA_ADMIN_TOKENS_FILE) or not.
    BearerCredentials adminTokens =
        new BearerCredentials(
            "admin",
            AdminTokens.resolve(settings).stream()
                .map(e -> new BearerCredentials.Credential(e.name(), e.sha256()))
                .toList());
    String reporterToken =
        TokenFile.resolve(settings.reporterToken(), settings.dataDir(), "reporter-token");
    String meteringToken =
        TokenFile.resolve(settings.meteringToken(), settings.dataDir(), "metering-token");
    ServerCredentials tls = ServerTls.credentials(settings); // plaintext unless QUOTA_TLS_CERT/KEY
    Operations ops = new Operations(); // first: the pool and the price table register meters in it
    MeterRegistry registry = ops.registry();
    // Parsed now (a bad file stops the start here), polled only once started.
    ReloadingPriceTable prices = ReloadingPriceTable.read(settings.pricesFile(), registry);

    // ---- 2. The database: the one thing opened before the parts are built.
    Database database = Database.open(settings, registry);
    QuotaAuthority app;
    try {
      app =
          build(
              settings,
              clock,
              ops,
              registry,
              database,
              prices,
              adminTokens,
              reporterToken,
              meteringToken,
              tls);
    } catch (RuntimeException e) {
      // Nothing but the pool (and an embedded PostgreSQL) is running yet.
      database.close();
      ops.close();
      throw e;
    }

    // ---- 3. Start, in order; a failure closes everything (close() copes with parts not started).
    try {
      app.startParts();
    } catch (IOException | RuntimeException e) {
      app.close();
      throw e;
    }
    log.info(
        "quota-authority serving: authz port {}, metering port {}, admin port {} on {}",
        app.authzServer.getPort(),
        app.meteringServer.getPort(),
        app.adminServer.getPort(),
        settings.adminBind().getHostAddress());
    if (app.console != null) {
      log.info(
          "console: {} (listening on {}; sign in with an admin token)",
          app.console.url(),
          app.console.address());
    } else {
      log.info("console: off (QUOTA_CONSOLE_PORT=0)");
    }
    return app;
  }

  /** Builds every part over the open database. Starts no thread and binds no port. */
  private static QuotaAuthority build(
      Settings settings,
      Clock clock,
      Operations ops,
      MeterRegistry registry,
      Database database,
      ReloadingPriceTable prices,
      BearerCredentials adminTokens,
      String reporterToken,
      String meteringToken,
      ServerCredentials tls) {
    Transactions tx = database.transactions();
    KeyRepository keys = new KeyRepository(tx);
    // Cold-path key loads run here, off the gRPC threads; the queue is bounded so a flood of
    // unknown keys fails fast (503) instead of piling up. Each loader thread holds at most one pool
    // connection, so the thread count caps what cold loads can take: half the pool, leaving the
    // rest to usage commits and admin calls however many unknown keys arrive.
    int coldLoaders = coldLoadThreads(settings.dbPoolSize());
    ThreadPoolExecutor keyLoader =
        new ThreadPoolExecutor(
            coldLoaders,
            coldLoaders,
            30,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(10_000),
            DaemonThreads.numbered("key-loader"));
    KeyCache cache =
        new KeyCache(keys, keyLoader, settings.cacheMaxKeys(), settings.negativeCacheTtl())
            // Spending windows: the recent usage of cached windowed keys, in memory.
            .trackingUsage(new UsageWindows(keys::usageHistory, clock));
    ops.metrics().monitorKeyCache(cache.knownCache(), cache::loadCount);
    ops.metrics().monitorLiveKeys(cache);
    KeyAdmin keyAdmin = new KeyAdmin(tx, keys, cache, clock);
    UsageRepository usageRepository = new UsageRepository(tx, clock);
    BudgetPeriods budgetPeriods = new BudgetPeriods(tx, clock);
    // Queued usage, shared by the batcher (adds and settles) and Check (counts it as spent).
    PendingUsage pendingUsage = new PendingUsage();
    UsageBatcher batcher =
        new UsageBatcher(
            usageRepository,
            cache,
            pendingUsage,
            settings.usageCommitMax(),
            settings.usageCommitInterval(),
            settings.usageQueueMax(),
            ops.metrics().commitRecorder(),
            settings.usageCommitters());
    // Delayed work (held usage reports, metering's charge retries); drained at shutdown before
    // the batcher closes, so a retry waiting here is still committed.
    Retries scheduler = new Retries("usage-retries");
    KeyChangeListener listener =
        new KeyChangeListener(
            database::openDedicatedConnection,
            keys,
            cache,
            settings.refreshInterval(),
            settings.refreshKeysPerSecond(),
            ops.metrics().keyChangeRecorder(),
            // A reconnect may follow a failover: the new primary's settings are checked again.
            database::checkReplication);
    ops.metrics().monitorReplication(database);
    // Holds on keys' budgets, admitted against slices leased from PostgreSQL (README "Holds"). The
    // instance id is new at every start: a restarted instance never takes over the leases of its
    // previous life, which expire and go back to their keys.
    BudgetLeases leases =
        settings.holds()
            ? new BudgetLeases(
                new LeaseRepository(tx),
                instanceId(),
                settings.leaseSliceUsd(),
                settings.leaseInstances(),
                settings.leaseTtl(),
                // Given back after a quarter of the ttl without holds: long enough to serve a
                // burst from one slice, short enough that an idle instance frees the budget.
                settings.leaseTtl().dividedBy(4),
                clock,
                ops.metrics().leaseRecorder())
            : null;
    // Concurrency slots the same way: at most SLOT_SLICE per round trip, given back at release
    // while a key's free slots are scarce.
    String instance = leases == null ? null : leases.instanceId();
    BudgetLeases slots =
        settings.holds()
            ? BudgetLeases.slots(
                new LeaseRepository(tx, LeaseRepository.Resource.SLOTS),
                instance,
                SLOT_SLICE,
                settings.leaseInstances(),
                settings.leaseTtl(),
                settings.leaseTtl().dividedBy(4),
                clock,
                BudgetLeases.Recorder.NONE)
            : null;
    // Holds Check takes for usage-stream reporters, on the same leases; their ids are signed with
    // the key every instance shares, so a report may settle one on any instance.
    ReporterHolds reporterHolds =
        leases == null
            ? null
            : new ReporterHolds(
                leases,
                new HoldIds(new ClusterSecrets(tx).getOrCreate(ClusterSecrets.HOLD_IDS)),
                usageRepository,
                batcher,
                settings.reporterHoldTtl(),
                clock,
                ops.metrics().reporterHoldRecorder());
    Metrics.EnumCounters<UsageOutcome.Result> reports = ops.metrics().usageReports();
    UsageService usageService =
        new UsageService(
            batcher,
            clock,
            scheduler,
            () -> reports.increment(UsageOutcome.Result.REJECTED),
            reporterHolds);
    UsageCharger charger =
        new UsageCharger(
            batcher,
            prices,
            // Unset: unpriced models are refused to keys with a quota (UsageCharger).
            settings.unpricedModelUsdPerMtok().orElse(null),
            registry,
            clock,
            scheduler,
            leases,
            slots);

    // Two health services. The authz port's says whether this process can answer Checks: it stays
    // SERVING through a database outage (cached keys are still answered; Envoy must keep sending
    // them here) and goes NOT_SERVING only at shutdown. The admin port's follows readiness
    // (database, migrations, notification listener), like /readyz.
    HealthStatusManager authzHealth = new HealthStatusManager();
    HealthStatusManager health = new HealthStatusManager();
    Authorizer authorizer =
        new Authorizer(
            cache,
            pendingUsage,
            clock,
            ops.metrics().checkRecorder(),
            reporterHolds,
            // Request permits of keys with requests_per_minute, granted by PostgreSQL on two
            // threads of their own (bounded: an overload answers 503, never queues without end).
            new RatePermits(
                new RateRepository(database.transactions()),
                new ThreadPoolExecutor(
                    2,
                    2,
                    30,
                    TimeUnit.SECONDS,
                    new ArrayBlockingQueue<>(10_000),
                    DaemonThreads.numbered("rate-permits")),
                clock));
    // ext_proc body work (parsing prompts, scanning responses) runs here, never on a transport
    // thread; bounded, so an overload answers messages unread instead of queueing without end.
    MeteringExecutor meteringWork = MeteringExecutor.forCores();
    Server authz =
        authzServer(
                Transport.apply(
                    NettyServerBuilder.forAddress(new InetSocketAddress(settings.authzPort()), tls),
                    // Check, usage and health keep gRPC's usual limit; only the metering listener
                    // takes bodies.
                    Transport.DEFAULT_MAX_MESSAGE_BYTES),
                new AuthorizationService(authorizer),
                ServerInterceptors.intercept(
                    usageService, new BearerTokenInterceptor(reporterToken, "reporter")),
                authzHealth)
            .build();
    // Metering charges keys, so only the holder of the metering token (Envoy) may open a stream;
    // every refusal is counted and warned about, since Envoy fails open and would stay quiet.
    // Whole buffered request bodies arrive here, so this listener alone takes large messages.
    Server metering =
        meteringServer(
                Transport.apply(
                    NettyServerBuilder.forAddress(
                        new InetSocketAddress(settings.meteringPort()), tls),
                    Transport.METERING_MAX_MESSAGE_BYTES),
                ServerInterceptors.intercept(
                    new ExtProcService(charger, meteringWork),
                    new BearerTokenInterceptor(
                        meteringToken, "metering", new MeteringRefusals(registry))),
                authzHealth)
            .build();
    KeyAdminService adminService =
        new KeyAdminService(
            keyAdmin,
            new UsageReadBack(tx, keys, usageRepository),
            clock,
            new BudgetPeriodReadBack(keyAdmin, budgetPeriods));
    Server admin =
        adminServer(
                Transport.apply(
                        NettyServerBuilder.forAddress(
                            new InetSocketAddress(settings.adminBind(), settings.adminPort()), tls),
                        Transport.DEFAULT_MAX_MESSAGE_BYTES)
                    .intercept(ops.adminCallMetrics()),
                adminService,
                adminTokens,
                health)
            .build();
    // The console's bridge calls the same service through an in-process server built by the same
    // adminServer (token, malformed-request refusals, call metrics), so a browser's call is
    // authenticated, refused and audited exactly as one on the admin port. Its calls run on a few
    // threads of their own (they reach the database); the bridge bounds how many are in flight.
    Server consoleBackend = null;
    ManagedChannel consoleChannel = null;
    ThreadPoolExecutor consoleWork = null;
    if (settings.consolePort() != 0) {
      String name = "console-admin-" + instanceId();
      consoleWork =
          new ThreadPoolExecutor(
              CONSOLE_THREADS,
              CONSOLE_THREADS,
              30,
              TimeUnit.SECONDS,
              new java.util.concurrent.LinkedBlockingQueue<>(),
              DaemonThreads.numbered("console-admin"));
      consoleBackend =
          adminServer(
                  InProcessServerBuilder.forName(name)
                      .executor(consoleWork)
                      .maxInboundMessageSize(Transport.DEFAULT_MAX_MESSAGE_BYTES)
                      .intercept(ops.adminCallMetrics()),
                  adminService,
                  adminTokens,
                  health)
              .build();
      consoleChannel = InProcessChannelBuilder.forName(name).directExecutor().build();
    }
    return new QuotaAuthority(
        settings,
        database,
        keyLoader,
        scheduler,
        batcher,
        leases,
        slots,
        reporterHolds,
        usageService,
        listener,
        prices,
        meteringWork,
        authzHealth,
        health,
        authz,
        metering,
        admin,
        cache,
        pendingUsage,
        ops,
        consoleBackend,
        consoleChannel,
        consoleWork,
        budgetPeriods);
  }

  /** Starts what {@link #build} made: threads first, then the listeners, then health says so. */
  private void startParts() throws IOException {
    batcher.start();
    if (leases != null) {
      // Renews this instance's leases, gives back idle ones, reaps those of dead instances.
      leases.start(settings.leaseTtl().dividedBy(4));
      slots.start(settings.leaseTtl().dividedBy(4));
      // About once a second: how soon a hold settled on another instance is free here again.
      reporterHolds.start(REPORTER_HOLD_ROUND);
    }
    listener.start();
    // Every second: a period's end is honoured in memory at once, the row follows within this.
    // Only keys cached here are refreshed: others hear of the change by its notification.
    budgetPeriods.start(Duration.ofSeconds(1), cache::refresh);
    prices.start();
    authzServer.start();
    meteringServer.start();
    adminServer.start();
    if (consoleBackend != null) {
      consoleBackend.start();
      console =
          ConsoleServer.start(
              settings.consoleBind(),
              settings.consolePort(),
              new AdminBridge(
                  consoleChannel,
                  io.quotaauthority.proto.v1.KeyAdminServiceGrpc.getServiceDescriptor(),
                  ConsoleServer.MAX_IN_FLIGHT));
    }
    // Sets the gRPC health status from now on (SERVING only while every check passes) and opens
    // /metrics, /healthz, /readyz.
    ops.start(
        settings.metricsBind(),
        settings.metricsPort(),
        health,
        List.of(
            Readiness.check("database", database::reachable),
            Readiness.check("notifications", listener::connected)));
    authzHealth.setStatus("", ServingStatus.SERVING);
  }

  /**
   * The authz port: what Envoy calls (Check, credential-free), usage reports (reporter token),
   * health and reflection. Metering is not here: it has its own listener and token.
   */
  static ServerBuilder<?> authzServer(
      ServerBuilder<?> builder,
      AuthorizationService check,
      ServerServiceDefinition usage,
      HealthStatusManager health) {
    return builder
        // Every handler on this port answers without blocking (cold key loads and usage commits
        // run on their own threads, ext_proc work on the MeteringExecutor), so calls run on the
        // transport threads: no executor hop. Limits and keepalive: see Transport.apply.
        .directExecutor()
        .addService(check)
        .addService(usage)
        .addService(health.getHealthService())
        .addService(ProtoReflectionServiceV1.newInstance());
  }

  /**
   * The metering port: Envoy's ext_proc behind the metering token, plus the authz port's health
   * (Envoy health-checks this cluster too; health reveals nothing, so it needs no token). No
   * reflection: nothing here is for people.
   */
  static ServerBuilder<?> meteringServer(
      ServerBuilder<?> builder, ServerServiceDefinition metering, HealthStatusManager health) {
    return builder
        // ExtProcService answers without blocking (charges are queued), so it runs on the
        // transport threads like the authz port's services.
        .directExecutor()
        // Its builder comes with Transport.METERING_MAX_MESSAGE_BYTES: only this listener takes
        // whole buffered bodies, and only after the token was checked (headers precede messages).
        .addService(metering)
        .addService(health.getHealthService());
  }

  /** The admin port: the admin API behind its bearer token, plus health. */
  static ServerBuilder<?> adminServer(
      ServerBuilder<?> builder,
      BindableService admin,
      BearerCredentials tokens,
      HealthStatusManager health) {
    return builder
        // The token check runs first (outermost); then requests that do not parse are refused
        // INVALID_ARGUMENT naming the field, through the server's interceptors, so they are
        // counted.
        .addService(
            ServerInterceptors.intercept(
                MalformedRequests.refuse(admin.bindService()), new BearerTokenInterceptor(tokens)))
        .addService(health.getHealthService())
        .addService(ProtoReflectionServiceV1.newInstance());
  }

  public int authzPort() {
    return authzServer.getPort();
  }

  public int meteringPort() {
    return meteringServer.getPort();
  }

  public int adminPort() {
    return adminServer.getPort();
  }

  /** The console's HTTP port; -1 when QUOTA_CONSOLE_PORT=0 turned it off. */
  public int consolePort() {
    return console == null ? -1 : console.port();
  }

  public KeyChangeListener listener() {
    return listener;
  }

  public UsageBatcher batcher() {
    return batcher;
  }

  public KeyCache cache() {
    return cache;
  }

  /** Usage queued on this instance and not yet committed (tests). */
  public PendingUsage pendingUsage() {
    return pendingUsage;
  }

  public Database database() {
    return database;
  }

  /**
   * Metrics (pass {@code operations().metrics()} to anything that records), readiness, HTTP port.
   */
  public Operations operations() {
    return ops;
  }

  /** Ordered, bounded shutdown; safe to call twice. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    long deadline = System.nanoTime() + settings.shutdownTimeout().toNanos();
    // Tell load balancers and Envoy's health checks first, so no new traffic is sent here.
    ops.draining();
    authzHealth.enterTerminalState();
    health.enterTerminalState();
    // Usage streams take no more reports and end once what they took is committed and answered;
    // otherwise they would stay open until forced, and what was queued would be charged unanswered.
    usageService.drain();
    // What they took is committed now, not after QUOTA_USAGE_COMMIT_INTERVAL, so it is answered
    // while the streams are still open.
    batcher.flush();
    if (console != null) {
      console.close(); // no new browser calls; those in flight finish on the in-process server
    }
    authzServer.shutdown();
    meteringServer.shutdown();
    adminServer.shutdown();
    if (consoleBackend != null) {
      consoleBackend.shutdown();
    }
    awaitOrForce(authzServer, deadline);
    // Open metering streams last as long as their LLM responses; past the deadline they are cut
    // and each charges the usage it saw (MeteringSession.streamClosed) before the batcher closes.
    awaitOrForce(meteringServer, deadline);
    awaitOrForce(adminServer, deadline);
    if (consoleBackend != null) {
      awaitOrForce(consoleBackend, deadline);
      consoleChannel.shutdownNow();
      consoleWork.shutdownNow();
    }
    prices.close();
    // The servers are down, so no message arrives any more: finish what the lanes hold (answers
    // nobody reads now, but also the charges of responses that ended) before the batcher closes.
    meteringWork.close(
        Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())) + 1000);
    // No call can queue usage any more: commit what is queued, then let go of the database.
    // Delayed work (a held report, a charge retry) is drained while the batcher is still open:
    // what is due by the deadline runs at its time; what would wait longer runs now, once.
    scheduler.drain(deadline);
    batcher.close(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())).plusSeconds(1));
    if (leases != null) {
      reporterHolds.close();
      // Every charge is settled: the leases without holds go back now, not at their expiry.
      leases.close();
      slots.close();
    }
    budgetPeriods.close();
    listener.close();
    keyLoader.shutdownNow();
    database.close();
    ops.close();
    log.info("quota-authority stopped");
  }

  private static void awaitOrForce(Server server, long deadlineNanos) {
    try {
      long left = deadlineNanos - System.nanoTime();
      if (!server.awaitTermination(Math.max(0, left), TimeUnit.NANOSECONDS)) {
        server.shutdownNow();
        server.awaitTermination(1, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      server.shutdownNow();
    }
  }

  /**
   * Threads (so pool connections) cold key loads may use at once: half the pool, at least one. With
   * a pool of 1 the one connection is necessarily shared; from 2 up a commit always finds one.
   */
  static int coldLoadThreads(int poolSize) {
    return Math.max(1, poolSize / 2);
  }

  /** Most concurrency slots of one key an instance leases in one round trip. */
  static final int SLOT_SLICE = 8;

  /** Threads running the console's admin calls (each may hold one pool connection at a time). */
  static final int CONSOLE_THREADS = 4;

  /** How often this instance asks the ledger which of its reporter holds were settled elsewhere. */
  static final Duration REPORTER_HOLD_ROUND = Duration.ofSeconds(1);

  /**
   * This instance's name in key_leases: host, process and 48 random bits, so two instances never
   * share one and a restart starts afresh (at most 128 characters, as the column allows).
   */
  static String instanceId() {
    String host;
    try {
      host = java.net.InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      host = "host";
    }
    byte[] random = new byte[6];
    new java.security.SecureRandom().nextBytes(random);
    String id =
        host
            + "/"
            + ProcessHandle.current().pid()
            + "/"
            + java.util.HexFormat.of().formatHex(random);
    return id.length() <= 128 ? id : id.substring(id.length() - 128);
  }
}
