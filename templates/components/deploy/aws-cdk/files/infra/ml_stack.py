"""The AWS side of the project, as two CDK stacks deployed in order.

* ``<project>-base`` (:class:`BaseStack`): everything that must exist before the serving
  image can be pushed and that outlives any one model: KMS key, buckets, DynamoDB table,
  ECR repository, SageMaker managed MLflow, model package group and the IAM roles.
* ``<project>-serving`` (:class:`ServingStack`): the SageMaker model, endpoint config and
  endpoint running ``<repository>:<image_tag>``, plus the CloudWatch alarms. Its
  ``image_tag`` is a context value, so a fresh account deploys base -> push the image
  -> serving (``make deploy``), and a new model image is one serving deploy.

The serving stack reads the base stack's names and ARNs through CloudFormation exports
(CDK's cross-stack references), so the base stack cannot drop or rename a resource the
serving stack uses while the serving stack still references it.

What they create, and why:

* **KMS key** (rotating) encrypting the buckets, the DynamoDB table, the ECR repository,
  the SNS alarm topic and the SageMaker endpoint's volumes: one customer-managed key, so
  access to every piece of data is governed by one key policy and logged by CloudTrail.
* **S3 buckets** ``<prefix>-data`` (DVC remote), ``<prefix>-mlflow`` (MLflow artifacts)
  and ``<prefix>-reports`` (Evidently reports): KMS-encrypted, versioned, public access
  blocked, TLS-only bucket policies, server access logs to ``<prefix>-access-logs``.
* **MLflow**: a SageMaker *managed* MLflow tracking server (``CfnMlflowTrackingServer``)
  with its artifact store in the MLflow bucket. Chosen over MLflow on ECS Fargate + RDS
  PostgreSQL because it leaves nothing to run or patch (no database, load balancer,
  container service or auth proxy), authenticates with IAM (SigV4) instead of a password
  in front of the UI, and is what SageMaker's model registry and endpoints integrate
  with. The price is a per-hour server charge and an AWS-specific client plugin
  (``sagemaker-mlflow``); self-hosting wins only if the MLflow version must be newer
  than the managed one or cost must scale to zero.
* **DynamoDB table** ``<package>.<feature view>`` (``feature_view`` of cdk.json: the data
  contract's ``FEATURE_VIEW``): the Feast DynamoDB online store's table (Feast's naming:
  ``<project>.<feature view>``, hash key ``entity_id``), with point-in-time recovery and
  the KMS key.
* **ECR repository** for the serving image: scan on push, immutable tags, KMS.
* **SageMaker real-time endpoint** serving the project's own image (model + endpoint
  config + endpoint). The image answers SageMaker's container contract (``GET /ping``,
  ``POST /invocations`` on 8080, started with the ``serve`` argument).
  ``SERVING_ROLLOUT=canary|shadow`` (the serving app's settings) adds the registry's
  ``challenger`` as a second variant, weighted by ``SERVING_CANARY_PERCENT`` or as a
  shadow variant (:meth:`ServingStack._variants`).
* **Model package group** mirroring the MLflow ``champion`` in SageMaker's registry.
* **IAM roles** with least privilege: every statement names its resources (the only
  ``*`` resource is ``ecr:GetAuthorizationToken``, which AWS does not scope). The
  endpoint's role reads the Feast registry and offline table under ``feast/`` of the data
  bucket (the container looks customers up by id) and the DynamoDB table.
* **CloudWatch alarms** on endpoint 5XX/4XX errors and p99 model latency, to an
  encrypted SNS topic.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

VARIANT = "champion"
CHALLENGER = "challenger"
ROLLOUT_MODES = ("none", "canary", "shadow")


@dataclass(frozen=True)
class StackConfig:
    """The knobs of the stack (cdk.json context)."""

    project: str
    package: str
    bucket_prefix: str
    image_tag: str
    instance_type: str
    model_name: str
    feature_view: str
    """The Feast feature view (the data contract's ``FEATURE_VIEW``): its DynamoDB table."""
    alarm_latency_p99_ms: int
    rollout: str = "none"
    """The serving app's ``SERVING_ROLLOUT``: ``canary`` or ``shadow`` adds the registry's
    ``challenger`` as a second variant of the endpoint (see :meth:`ServingStack._variants`)."""
    canary_percent: float = 10.0
    """``SERVING_CANARY_PERCENT``: the challenger's share of the traffic with ``canary``."""

    def __post_init__(self) -> None:
        if self.rollout not in ROLLOUT_MODES:
            raise ValueError(
                f"SERVING_ROLLOUT must be one of {', '.join(ROLLOUT_MODES)}; got {self.rollout!r}"
            )
        if not 0.0 <= self.canary_percent <= 100.0:
            raise ValueError(
                f"SERVING_CANARY_PERCENT must be from 0 to 100; got {self.canary_percent!r}"
            )


def skip_checkov(resource: cdk.CfnResource, check_id: str, comment: str) -> None:
    """Record a justified checkov suppression in the resource's template metadata."""
    metadata = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"].append({"id": check_id, "comment": comment})
    resource.add_metadata("checkov", metadata)


class BaseStack(cdk.Stack):
    """KMS, S3, DynamoDB, ECR, SageMaker MLflow + model package group, IAM roles."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig,
                 **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.key = kms.Key(
            self, "DataKey",
            alias=f"alias/{config.project}-ml",
            description=f"{config.project}: S3, DynamoDB, ECR, SNS and SageMaker volumes",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )  # fmt: skip
        self.key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        self.logs_bucket = self._access_logs_bucket()
        self.data_bucket = self._bucket("DataBucket", "data", "DVC remote (data, models)")
        self.mlflow_bucket = self._bucket("MlflowBucket", "mlflow", "MLflow artifacts")
        self.reports_bucket = self._bucket("ReportsBucket", "reports", "Evidently reports")
        self.table = self._feature_table()
        self.repository = self._repository()
        self.tracking_server = self._tracking_server()
        self.endpoint_role = self._endpoint_role()
        self._model_package_group()
        for name, value in {
            "DataBucketName": self.data_bucket.bucket_name,
            "MlflowBucketName": self.mlflow_bucket.bucket_name,
            "ReportsBucketName": self.reports_bucket.bucket_name,
            "FeatureTableName": self.table.table_name,
            "RepositoryName": self.repository.repository_name,
            "RepositoryUri": self.repository.repository_uri,
            "TrackingServerArn": self.tracking_server.attr_tracking_server_arn,
        }.items():
            cdk.CfnOutput(self, name, value=value)

    # ---- storage ------------------------------------------------------------------------

    def _access_logs_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self, "AccessLogsBucket",
            bucket_name=f"{self.config.bucket_prefix}-access-logs",
            # S3 server access logging can only deliver to SSE-S3 encrypted buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(365))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )  # fmt: skip
        resource = bucket.node.default_child
        assert isinstance(resource, cdk.CfnResource)
        skip_checkov(resource, "CKV_AWS_18",
                     "this is the access-log target; logging it into itself would loop")
        return bucket

    def _bucket(self, construct_id: str, suffix: str, purpose: str) -> s3.Bucket:
        bucket = s3.Bucket(
            self, construct_id,
            bucket_name=f"{self.config.bucket_prefix}-{suffix}",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs_bucket,
            server_access_logs_prefix=f"{suffix}/",
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )  # fmt: skip
        cdk.Tags.of(bucket).add("purpose", purpose)
        return bucket

    def _feature_table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self, "FeatureTable",
            table_name=f"{self.config.package}.{self.config.feature_view}",
            partition_key=dynamodb.Attribute(name="entity_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )  # fmt: skip

    def _repository(self) -> ecr.Repository:
        return ecr.Repository(
            self, "ServingRepository",
            repository_name=f"{self.config.project}-serving",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=self.key,
            lifecycle_rules=[ecr.LifecycleRule(max_image_count=50)],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )  # fmt: skip

    # ---- MLflow -------------------------------------------------------------------------

    def _tracking_server(self) -> sagemaker.CfnMlflowTrackingServer:
        role = iam.Role(
            self, "MlflowServerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker managed MLflow: read/write its artifact bucket only",
        )  # fmt: skip
        self.mlflow_bucket.grant_read_write(role)
        server = sagemaker.CfnMlflowTrackingServer(
            self, "TrackingServer",
            tracking_server_name=f"{self.config.project}-mlflow",
            artifact_store_uri=self.mlflow_bucket.s3_url_for_object("artifacts"),
            role_arn=role.role_arn,
            tracking_server_size="Small",
            automatic_model_registration=False,
        )  # fmt: skip
        # Create the role's policy before the server (the role itself is a GetAtt already).
        server.node.add_dependency(role.node.find_child("DefaultPolicy"))
        return server

    # ---- the endpoint's identity -----------------------------------------------------------

    def _endpoint_role(self) -> iam.Role:
        role = iam.Role(
            self, "EndpointRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker endpoint: pull the image, read features, load the model",
        )  # fmt: skip
        self.repository.grant_pull(role)
        self.table.grant_read_data(role)
        self.mlflow_bucket.grant_read(role)
        # Feast's registry (by-id lookups resolve the feature view through it).
        self.data_bucket.grant_read(role, "feast/*")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTheMlflowRegistry",
                actions=["sagemaker-mlflow:AccessUI", "sagemaker-mlflow:Get*",
                         "sagemaker-mlflow:Search*"],
                resources=[self.tracking_server.attr_tracking_server_arn],
            )
        )  # fmt: skip
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteEndpointLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"],
                resources=[self.format_arn(
                    service="logs", resource="log-group",
                    resource_name="/aws/sagemaker/Endpoints/*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )],
            )
        )  # fmt: skip
        return role

    def _model_package_group(self) -> None:
        sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup",
            model_package_group_name=f"{self.config.project}-{self.config.model_name}",
            model_package_group_description=(
                "Mirror of the MLflow registry's champion versions of "
                f"{self.config.model_name}"
            ),
        )  # fmt: skip


class ServingStack(cdk.Stack):
    """SageMaker model + endpoint config + endpoint on the base stack's image, and alarms."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig,
                 base: BaseStack, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.base = base
        self.endpoint = self._endpoint()
        self._alarms()
        cdk.CfnOutput(self, "EndpointName", value=self.endpoint.attr_endpoint_name)
        cdk.CfnOutput(self, "ImageTag", value=config.image_tag)

    # ---- serving ------------------------------------------------------------------------

    def _model(self, construct_id: str, alias_env: dict[str, str]) -> sagemaker.CfnModel:
        """The serving image as a SageMaker model; ``alias_env`` picks the registry alias."""
        config, base = self.config, self.base
        model = sagemaker.CfnModel(
            self, construct_id,
            execution_role_arn=base.endpoint_role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=base.repository.repository_uri_for_tag(config.image_tag),
                mode="SingleModel",
                environment={
                    "MLFLOW_TRACKING_URI": base.tracking_server.attr_tracking_server_arn,
                    "MODEL_NAME": config.model_name,
                    # feature_store.yaml: registry s3://$S3_DATA_BUCKET/feast/registry.pb
                    "S3_DATA_BUCKET": base.data_bucket.bucket_name,
                    "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region,  # what boto3 and pyarrow read
                    "LOG_LEVEL": "info",
                    **alias_env,
                },
            ),
        )  # fmt: skip
        skip_checkov(model, "CKV_AWS_370",
                     "the container loads its model from the MLflow tracking server and "
                     "reads DynamoDB; network isolation would cut both off")
        return model

    def _variant(
        self, name: str, model: sagemaker.CfnModel, weight: float
    ) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=name,
            model_name=model.attr_model_name,
            instance_type=self.config.instance_type,
            initial_instance_count=1,
            initial_variant_weight=weight,
            container_startup_health_check_timeout_in_seconds=600,
        )  # fmt: skip

    def _variants(self) -> dict[str, list[sagemaker.CfnEndpointConfig.ProductionVariantProperty]]:
        """The endpoint config's variants for the rollout (the serving app's settings).

        ``none``: the champion alone. ``canary``: SageMaker splits natively, the champion
        and the challenger variants weighted 100 - SERVING_CANARY_PERCENT and
        SERVING_CANARY_PERCENT (weights are relative). ``shadow``: the challenger is a
        shadow variant, sent a copy of every request (its weight equals the champion's:
        100 %), its answers never returned; the per-variant CloudWatch metrics compare
        them. The challenger's container serves the registry's ``challenger`` alias
        (``SERVING_MODEL_ALIAS``), the champion's the ``champion``.
        """
        config = self.config
        champion = self._model("ServingModel", {})
        if config.rollout == "none":
            return {"production_variants": [self._variant(VARIANT, champion, 1.0)]}
        challenger = self._model("ChallengerModel", {"SERVING_MODEL_ALIAS": CHALLENGER})
        if config.rollout == "shadow":
            return {
                "production_variants": [self._variant(VARIANT, champion, 1.0)],
                "shadow_production_variants": [self._variant(CHALLENGER, challenger, 1.0)],
            }
        share = config.canary_percent
        return {
            "production_variants": [
                self._variant(VARIANT, champion, 100.0 - share),
                self._variant(CHALLENGER, challenger, share),
            ]
        }

    def _endpoint(self) -> sagemaker.CfnEndpoint:
        config, base = self.config, self.base
        endpoint_config = sagemaker.CfnEndpointConfig(
            self, "EndpointConfig",
            kms_key_id=base.key.key_arn,
            **self._variants(),
        )  # fmt: skip
        endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint",
            endpoint_name=f"{config.project}-serving",
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
        )  # fmt: skip
        return endpoint

    # ---- alarms -------------------------------------------------------------------------

    def _alarms(self) -> None:
        topic = sns.Topic(self, "AlarmTopic", master_key=self.base.key,
                          display_name=f"{self.config.project} endpoint alarms")
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="TlsOnly",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        )  # fmt: skip
        dimensions = {"EndpointName": self.endpoint.attr_endpoint_name, "VariantName": VARIANT}

        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=name,
                                     dimensions_map=dimensions, statistic=statistic,
                                     period=cdk.Duration.minutes(5))

        alarms = [
            cloudwatch.Alarm(
                self, "Endpoint5xxAlarm",
                alarm_description="The endpoint answered 5XX (model or container failure)",
                metric=metric("Invocation5XXErrors", "Sum"),
                threshold=0, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "Endpoint4xxAlarm",
                alarm_description="Many 4XX answers: clients send invalid payloads",
                metric=metric("Invocation4XXErrors", "Sum"),
                threshold=20, evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "EndpointLatencyAlarm",
                alarm_description="p99 model latency above the budget (ModelLatency is in µs)",
                metric=metric("ModelLatency", "p99"),
                threshold=self.config.alarm_latency_p99_ms * 1000, evaluation_periods=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]  # fmt: skip
        for alarm in alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
