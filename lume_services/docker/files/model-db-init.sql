-- Model registry schema for MySQL/MariaDB, rendered from the Alembic migrations by
-- `python scripts/update_docker_compose_schema.py build-docker-compose-schema`.
-- Do not edit by hand: change the migrations and re-render.

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE model (
    model_id INTEGER NOT NULL AUTO_INCREMENT, 
    created DATETIME(6) NOT NULL, 
    author VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    laboratory VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    facility VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    beampath VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    description VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    CONSTRAINT pk_model PRIMARY KEY (model_id), 
    CONSTRAINT _model_entry UNIQUE (author, laboratory, facility, beampath, description)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE TABLE project (
    project_name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    description VARCHAR(2000) NOT NULL, 
    CONSTRAINT pk_project PRIMARY KEY (project_name)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE TABLE deployment (
    deployment_id INTEGER NOT NULL AUTO_INCREMENT, 
    version VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    deploy_date DATETIME(6) NOT NULL, 
    package_import_name VARCHAR(255) NOT NULL, 
    asset_dir VARCHAR(1024), 
    source VARCHAR(2048) NOT NULL, 
    sha256 VARCHAR(64) NOT NULL, 
    image VARCHAR(512), 
    is_live BOOL NOT NULL, 
    model_id INTEGER NOT NULL, 
    CONSTRAINT pk_deployment PRIMARY KEY (deployment_id), 
    CONSTRAINT fk_deployment_model_id_model FOREIGN KEY(model_id) REFERENCES model (model_id) ON DELETE CASCADE ON UPDATE CASCADE, 
    CONSTRAINT _deployment_unique UNIQUE (model_id, version)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_deployment_model_date ON deployment (model_id, deploy_date, deployment_id);

CREATE INDEX ix_deployment_model_live ON deployment (model_id, is_live);

CREATE INDEX ix_deployment_sha256 ON deployment (sha256);

CREATE TABLE flow (
    flow_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    flow_name VARCHAR(255) NOT NULL, 
    project_name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    deployment_id INTEGER, 
    composite BOOL NOT NULL, 
    CONSTRAINT pk_flow PRIMARY KEY (flow_id), 
    CONSTRAINT fk_flow_deployment_id_deployment FOREIGN KEY(deployment_id) REFERENCES deployment (deployment_id) ON DELETE CASCADE ON UPDATE CASCADE, 
    CONSTRAINT fk_flow_project_name_project FOREIGN KEY(project_name) REFERENCES project (project_name) ON DELETE RESTRICT ON UPDATE CASCADE, 
    CONSTRAINT uq_flow_deployment_id UNIQUE (deployment_id)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_flow_project ON flow (project_name, flow_id);

CREATE TABLE flow_of_flows (
    _id INTEGER NOT NULL AUTO_INCREMENT, 
    parent_flow_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    flow_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    position INTEGER NOT NULL, 
    mapped_parameters JSON, 
    CONSTRAINT pk_flow_of_flows PRIMARY KEY (_id), 
    CONSTRAINT ck_flow_of_flows_position_positive CHECK (position >= 1), 
    CONSTRAINT fk_flow_of_flows_flow_id_flow FOREIGN KEY(flow_id) REFERENCES flow (flow_id) ON DELETE RESTRICT ON UPDATE CASCADE, 
    CONSTRAINT fk_flow_of_flows_parent_flow_id_flow FOREIGN KEY(parent_flow_id) REFERENCES flow (flow_id) ON DELETE CASCADE ON UPDATE CASCADE, 
    CONSTRAINT _flow_of_flows_position UNIQUE (parent_flow_id, position)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_flow_of_flows_flow ON flow_of_flows (flow_id);

INSERT INTO alembic_version (version_num) VALUES ('0001');

-- Running upgrade 0001 -> 0002

CREATE INDEX ix_deployment_model_id ON deployment (model_id, deployment_id);

CREATE INDEX ix_model_facility_beampath ON model (facility, beampath, laboratory);

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

-- Running upgrade 0002 -> 0003

ALTER TABLE model ADD COLUMN require_approval BOOL NOT NULL DEFAULT false;

CREATE TABLE audit_event (
    event_id BIGINT NOT NULL AUTO_INCREMENT, 
    time DATETIME(6) NOT NULL, 
    actor VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    action VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    entity VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    entity_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    model_id INTEGER, 
    `before` JSON, 
    after JSON, 
    CONSTRAINT pk_audit_event PRIMARY KEY (event_id)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_audit_event_model ON audit_event (model_id, event_id);

CREATE INDEX ix_audit_event_actor ON audit_event (actor, event_id);

CREATE INDEX ix_audit_event_action ON audit_event (action, event_id);

CREATE INDEX ix_audit_event_time ON audit_event (time, event_id);

CREATE TABLE live_change (
    change_id INTEGER NOT NULL AUTO_INCREMENT, 
    model_id INTEGER NOT NULL, 
    deployment_id INTEGER, 
    version VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, 
    time DATETIME(6) NOT NULL, 
    actor VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    reason VARCHAR(2000), 
    approved_by VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, 
    request_id INTEGER, 
    CONSTRAINT pk_live_change PRIMARY KEY (change_id), 
    CONSTRAINT fk_live_change_model_id_model FOREIGN KEY(model_id) REFERENCES model (model_id) ON DELETE CASCADE ON UPDATE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_live_change_model ON live_change (model_id, time, change_id);

CREATE TABLE live_request (
    request_id INTEGER NOT NULL AUTO_INCREMENT, 
    model_id INTEGER NOT NULL, 
    deployment_id INTEGER NOT NULL, 
    expected_live INTEGER, 
    requested_by VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    requested_at DATETIME(6) NOT NULL, 
    reason VARCHAR(2000) NOT NULL, 
    state VARCHAR(16) NOT NULL, 
    decided_by VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, 
    decided_at DATETIME(6), 
    decision_reason VARCHAR(2000), 
    CONSTRAINT pk_live_request PRIMARY KEY (request_id), 
    CONSTRAINT fk_live_request_model_id_model FOREIGN KEY(model_id) REFERENCES model (model_id) ON DELETE CASCADE ON UPDATE CASCADE, 
    CONSTRAINT fk_live_request_deployment_id_deployment FOREIGN KEY(deployment_id) REFERENCES deployment (deployment_id) ON DELETE CASCADE ON UPDATE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_live_request_model ON live_request (model_id, request_id);

CREATE INDEX ix_live_request_state ON live_request (state, request_id);

INSERT INTO live_change (model_id, deployment_id, version, time, actor) SELECT deployment.model_id, deployment.deployment_id, deployment.version, deployment.deploy_date, 'unknown' AS anon_1 
FROM deployment 
WHERE deployment.is_live = true;

UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002';

-- Running upgrade 0003 -> 0004

CREATE TABLE deployment_variables (
    deployment_id INTEGER NOT NULL, 
    source_file VARCHAR(1000) NOT NULL, 
    format VARCHAR(32) NOT NULL, 
    inputs JSON NOT NULL, 
    outputs JSON NOT NULL, 
    CONSTRAINT pk_deployment_variables PRIMARY KEY (deployment_id), 
    CONSTRAINT fk_deployment_variables_deployment_id_deployment FOREIGN KEY(deployment_id) REFERENCES deployment (deployment_id) ON DELETE CASCADE ON UPDATE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4;

UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0003';

-- Running upgrade 0004 -> 0005

ALTER TABLE model ADD COLUMN tags JSON;

ALTER TABLE deployment ADD COLUMN tags JSON;

CREATE TABLE model_tag (
    model_id INTEGER NOT NULL, 
    `key` VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    value_sha256 VARCHAR(64) NOT NULL, 
    CONSTRAINT pk_model_tag PRIMARY KEY (model_id, `key`), 
    CONSTRAINT fk_model_tag_model_id_model FOREIGN KEY(model_id) REFERENCES model (model_id) ON DELETE CASCADE ON UPDATE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_model_tag_lookup ON model_tag (`key`, value_sha256, model_id);

CREATE TABLE deployment_tag (
    deployment_id INTEGER NOT NULL, 
    `key` VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    value_sha256 VARCHAR(64) NOT NULL, 
    CONSTRAINT pk_deployment_tag PRIMARY KEY (deployment_id, `key`), 
    CONSTRAINT fk_deployment_tag_deployment_id_deployment FOREIGN KEY(deployment_id) REFERENCES deployment (deployment_id) ON DELETE CASCADE ON UPDATE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_deployment_tag_lookup ON deployment_tag (`key`, value_sha256, deployment_id);

UPDATE alembic_version SET version_num='0005' WHERE alembic_version.version_num = '0004';

-- Running upgrade 0005 -> 0006

CREATE TABLE event_feed (
    feed_id INTEGER NOT NULL, 
    updated DATETIME(6) NOT NULL, 
    CONSTRAINT pk_event_feed PRIMARY KEY (feed_id)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE TABLE webhook (
    webhook_id INTEGER NOT NULL AUTO_INCREMENT, 
    url VARCHAR(2048) NOT NULL, 
    secret VARCHAR(256) NOT NULL, 
    event_types JSON NOT NULL, 
    model_id INTEGER, 
    created DATETIME(6) NOT NULL, 
    created_by VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    `cursor` BIGINT NOT NULL, 
    CONSTRAINT pk_webhook PRIMARY KEY (webhook_id)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE TABLE webhook_delivery (
    delivery_id BIGINT NOT NULL AUTO_INCREMENT, 
    webhook_id INTEGER NOT NULL, 
    event_id BIGINT NOT NULL, 
    event_type VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    model_key INTEGER NOT NULL, 
    state VARCHAR(16) NOT NULL, 
    attempts INTEGER NOT NULL, 
    created DATETIME(6) NOT NULL, 
    next_attempt_at DATETIME(6) NOT NULL, 
    claimed_until DATETIME(6), 
    claimed_by VARCHAR(200), 
    finished DATETIME(6), 
    last_status INTEGER, 
    last_error VARCHAR(2000), 
    replay_of BIGINT, 
    body MEDIUMTEXT NOT NULL, 
    CONSTRAINT pk_webhook_delivery PRIMARY KEY (delivery_id), 
    CONSTRAINT fk_webhook_delivery_webhook_id_webhook FOREIGN KEY(webhook_id) REFERENCES webhook (webhook_id) ON DELETE CASCADE ON UPDATE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_webhook_delivery_due ON webhook_delivery (state, next_attempt_at);

CREATE INDEX ix_webhook_delivery_group ON webhook_delivery (webhook_id, model_key, state, delivery_id);

CREATE INDEX ix_webhook_delivery_event ON webhook_delivery (event_id);

CREATE TABLE webhook_attempt (
    attempt_id BIGINT NOT NULL AUTO_INCREMENT, 
    delivery_id BIGINT NOT NULL, 
    attempt INTEGER NOT NULL, 
    started DATETIME(6) NOT NULL, 
    duration FLOAT NOT NULL, 
    status_code INTEGER, 
    error VARCHAR(2000), 
    worker VARCHAR(200) NOT NULL, 
    CONSTRAINT pk_webhook_attempt PRIMARY KEY (attempt_id), 
    CONSTRAINT fk_webhook_attempt_delivery_id_webhook_delivery FOREIGN KEY(delivery_id) REFERENCES webhook_delivery (delivery_id) ON DELETE CASCADE ON UPDATE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_webhook_attempt_delivery ON webhook_attempt (delivery_id, attempt);

UPDATE alembic_version SET version_num='0006' WHERE alembic_version.version_num = '0005';

-- Running upgrade 0006 -> 0007

CREATE TABLE api_token (
    token_id INTEGER NOT NULL AUTO_INCREMENT, 
    name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    active_name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, 
    token_sha256 VARCHAR(64) NOT NULL, 
    scope VARCHAR(16) NOT NULL, 
    project_name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, 
    created DATETIME(6) NOT NULL, 
    created_by VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    expires DATETIME(6), 
    revoked DATETIME(6), 
    revoked_by VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, 
    CONSTRAINT pk_api_token PRIMARY KEY (token_id), 
    CONSTRAINT ck_api_token_ck_api_token_scope_known CHECK (scope IN ('read', 'write', 'admin')), 
    CONSTRAINT uq_api_token_active_name UNIQUE (active_name), 
    CONSTRAINT uq_api_token_token_sha256 UNIQUE (token_sha256)
)ENGINE=InnoDB CHARSET=utf8mb4;

UPDATE alembic_version SET version_num='0007' WHERE alembic_version.version_num = '0006';

-- Running upgrade 0007 -> 0008

CREATE TABLE job (
    job_id INTEGER NOT NULL AUTO_INCREMENT, 
    kind VARCHAR(32) NOT NULL, 
    actor VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    state VARCHAR(16) NOT NULL, 
    step VARCHAR(64), 
    request JSON NOT NULL, 
    result JSON, 
    error MEDIUMTEXT, 
    error_type VARCHAR(64), 
    error_attributes JSON, 
    created DATETIME(6) NOT NULL, 
    started DATETIME(6), 
    finished DATETIME(6), 
    heartbeat DATETIME(6), 
    worker VARCHAR(200), 
    CONSTRAINT pk_job PRIMARY KEY (job_id)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_job_state ON job (state, job_id);

CREATE TABLE flow_run (
    run_id INTEGER NOT NULL AUTO_INCREMENT, 
    prefect_run_id VARCHAR(255) NOT NULL, 
    model_id INTEGER NOT NULL, 
    deployment_id INTEGER NOT NULL, 
    flow_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    parameters JSON NOT NULL, 
    actor VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, 
    state VARCHAR(16) NOT NULL, 
    result JSON, 
    error MEDIUMTEXT, 
    created DATETIME(6) NOT NULL, 
    finished DATETIME(6), 
    CONSTRAINT pk_flow_run PRIMARY KEY (run_id), 
    CONSTRAINT uq_flow_run_prefect_run_id UNIQUE (prefect_run_id)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_flow_run_model ON flow_run (model_id, run_id);

CREATE INDEX ix_flow_run_deployment ON flow_run (deployment_id, run_id);

UPDATE alembic_version SET version_num='0008' WHERE alembic_version.version_num = '0007';

-- Running upgrade 0008 -> 0009

CREATE TABLE web_session (
    session_sha256 VARCHAR(64) NOT NULL, 
    token_id INTEGER NOT NULL, 
    created DATETIME(6) NOT NULL, 
    expires DATETIME(6) NOT NULL, 
    CONSTRAINT pk_web_session PRIMARY KEY (session_sha256), 
    CONSTRAINT fk_web_session_token_id_api_token FOREIGN KEY(token_id) REFERENCES api_token (token_id) ON DELETE CASCADE ON UPDATE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX ix_web_session_expires ON web_session (expires);

UPDATE alembic_version SET version_num='0009' WHERE alembic_version.version_num = '0008';
