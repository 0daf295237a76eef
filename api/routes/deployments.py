"""Deployments and the models they serve: create, read as of, change, add, retire, promote."""

from __future__ import annotations

from api.routes.common import AS_OF, cursor, if_match, limit
from api.routes.table import ADMIN, Answer, Param, Route, roles
from api.schemas.deployments import (
    AddModelSchema,
    DeploymentCreateSchema,
    DeploymentPageSchema,
    DeploymentPatchSchema,
    DeploymentSchema,
    PromoteSchema,
    RetireSchema,
)

TAG = "deployments"
ONE = {200: Answer("the deployment", DeploymentSchema, headers={"ETag": "its version"})}
REASON = Param("reason", "why (else the body's `reason`)", max_length=2000)

ROUTES = (
    Route(
        "POST",
        "/v1/deployments",
        roles(ADMIN),
        "Create a deployment",
        TAG,
        {201: Answer("the new deployment", DeploymentSchema)},
        body=DeploymentCreateSchema,
    ),
    Route(
        "GET",
        "/v1/deployments",
        roles("any"),
        "List deployments",
        TAG,
        {200: Answer("a page of deployments, by name", DeploymentPageSchema)},
        query=(AS_OF, limit(100, 1000), cursor("name")),
    ),
    Route(
        "GET", "/v1/deployments/{name}", roles("any"), "One deployment", TAG, ONE, query=(AS_OF,)
    ),
    Route(
        "PATCH",
        "/v1/deployments/{name}",
        roles(ADMIN),
        "Change policy, schema or settings",
        TAG,
        ONE,
        headers=(if_match(True),),
        body=DeploymentPatchSchema,
    ),
    Route(
        "POST",
        "/v1/deployments/{name}/models",
        roles(ADMIN),
        "Add a challenger",
        TAG,
        {201: Answer("the deployment with the challenger", DeploymentSchema)},
        headers=(if_match(False),),
        body=AddModelSchema,
    ),
    Route(
        "DELETE",
        "/v1/deployments/{name}/models/{model_id}",
        roles(ADMIN),
        "Retire a model (an event; nothing is deleted)",
        TAG,
        ONE,
        query=(REASON,),
        body=RetireSchema,
    ),
    Route(
        "PUT",
        "/v1/deployments/{name}/leader",
        roles(ADMIN),
        "Promote a leader",
        TAG,
        ONE,
        headers=(if_match(True),),
        body=PromoteSchema,
    ),
)
