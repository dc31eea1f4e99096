"""Request bodies of the Nessie REST API v2, as pydantic models (validation + OpenAPI).

Field names and aliases are Nessie's JSON names. Unknown fields are ignored, as
Nessie's server (Jackson with ``FAIL_ON_UNKNOWN_PROPERTIES`` off) does; wrong types
are a 400. Content objects stay plain JSON objects here and are parsed by
:func:`lakehouse.server.wire.content_from_wire`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lakehouse.catalog.model import MergeBehavior


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class ContentKeyBody(_Body):
    """``{"elements": ["bronze", "orders"]}``."""

    elements: list[str] = Field(min_length=1)


class ReferenceBody(_Body):
    """A branch, tag or detached commit (``type``: ``BRANCH``, ``TAG``, ``DETACHED``)."""

    type: str | None = None
    name: str | None = None
    hash: str | None = None


class CommitMetaBody(_Body):
    """Commit metadata as a client sends it (hash, committer and times are the server's)."""

    message: str
    author: str | None = None
    authors: list[str] | None = None
    author_time: datetime | None = Field(default=None, alias="authorTime")
    signed_off_by: str | None = Field(default=None, alias="signedOffBy")
    all_signed_off_by: list[str] | None = Field(default=None, alias="allSignedOffBy")
    properties: dict[str, str] | None = None
    all_properties: dict[str, list[str]] | None = Field(default=None, alias="allProperties")
    # Set by the server only; a client sending them gets a 400 (as from Nessie).
    committer: str | None = None
    commit_time: str | None = Field(default=None, alias="commitTime")
    hash: str | None = None
    parent_commit_hashes: list[str] | None = Field(default=None, alias="parentCommitHashes")


class OperationBody(_Body):
    """``PUT`` (with ``content``), ``DELETE`` or ``UNCHANGED`` on ``key``."""

    type: str
    key: ContentKeyBody
    content: dict[str, Any] | None = None


class OperationsBody(_Body):
    """Body of ``POST /trees/{branch@hash}/history/commit``."""

    commit_meta: CommitMetaBody = Field(alias="commitMeta")
    operations: list[OperationBody]


class GetMultipleContentsBody(_Body):
    """Body of ``POST /trees/{ref}/contents``."""

    requested_keys: list[ContentKeyBody] = Field(alias="requestedKeys")


class MergeKeyBehaviorBody(_Body):
    """How a merge/transplant treats one key."""

    key: ContentKeyBody
    merge_behavior: MergeBehavior = Field(alias="mergeBehavior")
    expected_target_content: dict[str, Any] | None = Field(
        default=None, alias="expectedTargetContent"
    )
    resolved_content: dict[str, Any] | None = Field(default=None, alias="resolvedContent")


class _MergeTransplantBody(_Body):
    from_ref_name: str = Field(alias="fromRefName")
    message: str | None = None
    key_merge_modes: list[MergeKeyBehaviorBody] | None = Field(default=None, alias="keyMergeModes")
    default_key_merge_mode: MergeBehavior | None = Field(default=None, alias="defaultKeyMergeMode")
    dry_run: bool | None = Field(default=None, alias="dryRun")
    fetch_additional_info: bool | None = Field(default=None, alias="fetchAdditionalInfo")
    return_conflict_as_result: bool | None = Field(default=None, alias="returnConflictAsResult")

    @model_validator(mode="before")
    @classmethod
    def _accept_is_prefixed_flags(cls, data: Any) -> Any:
        """Accept ``isDryRun`` & co. too: Nessie 0.99's own clients send those names.

        Nessie's server reads only the ``is…`` spellings (projectnessie/nessie#12130),
        so Java and Spark clients send them; if we ignored them, a dry-run merge from such
        a client would be applied. When both spellings are present, a flag is on if either
        says so — a dry run is never turned into a real merge.
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in ("dryRun", "returnConflictAsResult", "fetchAdditionalInfo"):
            legacy = "is" + name[0].upper() + name[1:]
            if legacy in data:
                flag = data.pop(legacy)
                current = data.get(name)
                if isinstance(flag, bool) and (current is None or isinstance(current, bool)):
                    data[name] = bool(current) or flag
                else:
                    data[name] = flag if current is None else current
        return data


#: ``GET /api/v2/config`` ``additionalProperties`` key with which the server advertises the
#: ``contentMerge`` opt-in of merges; its value is the extension's version (``"1"``).
CONTENT_MERGE_PROPERTY = "lakehouse.content-merge"
#: The version of the ``contentMerge`` extension this server speaks.
CONTENT_MERGE_VERSION = 1


class MergeBody(_MergeTransplantBody):
    """Body of ``POST /trees/{branch@hash}/history/merge``."""

    from_hash: str | None = Field(default=None, alias="fromHash")
    commit_meta: CommitMetaBody | None = Field(default=None, alias="commitMeta")
    content_merge: bool | None = Field(
        default=None,
        alias="contentMerge",
        description=(
            "Lakehouse extension, off unless true: an Iceberg table changed on both sides "
            "merges by content when the changes commute (appends, position deletes, "
            "rewrites; see docs/compatibility.md), computed by the server and committed "
            "as one merge commit against the expected hash; any other table changed on "
            "both sides is a conflict whose message says why. Each such table's detail "
            "carries `contentMerge` in the response, also on a dry run. Offered only when "
            f"`GET /api/v2/config` lists `{CONTENT_MERGE_PROPERTY}` in "
            "`additionalProperties` (else 400); not with `resolvedContent`. Nessie's "
            "servers ignore the field: send it only to a server that advertises it."
        ),
    )


class TransplantBody(_MergeTransplantBody):
    """Body of ``POST /trees/{branch@hash}/history/transplant`` (hashes oldest first)."""

    hashes_to_transplant: list[str] = Field(alias="hashesToTransplant", min_length=1)
    content_merge: bool | None = Field(
        default=None,
        alias="contentMerge",
        description="Lakehouse extension of merges only: true is refused (400) here.",
    )


class _Response(BaseModel):
    """A response body, for the OpenAPI document (handlers write plain JSON)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class NessieConfigurationResponse(_Response):
    """``GET /api/v2/config`` (Nessie's ``NessieConfiguration``)."""

    default_branch: str = Field(alias="defaultBranch")
    min_supported_api_version: int = Field(alias="minSupportedApiVersion")
    max_supported_api_version: int = Field(alias="maxSupportedApiVersion")
    actual_api_version: int = Field(alias="actualApiVersion")
    spec_version: str = Field(alias="specVersion")
    no_ancestor_hash: str = Field(alias="noAncestorHash")
    additional_properties: dict[str, str] | None = Field(
        default=None,
        alias="additionalProperties",
        description=(
            "Nessie's free-form server properties. This server lists its extensions here: "
            f"`{CONTENT_MERGE_PROPERTY}` (value: the extension's version, "
            f'"{CONTENT_MERGE_VERSION}") when merges take `contentMerge`.'
        ),
    )


class ContentMergeOutcome(_Response):
    """What a ``contentMerge`` did with one table changed on both sides."""

    merged: bool
    description: str = Field(
        description='"merged by content (appends on the source …)" or "conflict: …"'
    )


class ConflictResponse(_Response):
    """Nessie's ``Conflict`` of one key."""

    conflict_type: str = Field(alias="conflictType")
    key: dict[str, Any] | None = None
    message: str


class ContentKeyDetailsResponse(_Response):
    """Nessie's ``ContentKeyDetails``: what a merge or transplant did with one key."""

    key: dict[str, Any]
    merge_behavior: MergeBehavior = Field(alias="mergeBehavior")
    conflict: ConflictResponse | None = None
    content_merge: ContentMergeOutcome | None = Field(
        default=None,
        alias="contentMerge",
        description="Only with `contentMerge: true`, for a table changed on both sides.",
    )


class MergeResponse(_Response):
    """Nessie's ``MergeResponse`` of a merge or transplant (also of a dry run)."""

    was_applied: bool = Field(alias="wasApplied")
    was_successful: bool = Field(alias="wasSuccessful")
    resultant_target_hash: str | None = Field(default=None, alias="resultantTargetHash")
    common_ancestor: str | None = Field(default=None, alias="commonAncestor")
    target_branch: str = Field(alias="targetBranch")
    effective_target_hash: str = Field(alias="effectiveTargetHash")
    expected_hash: str | None = Field(default=None, alias="expectedHash")
    details: list[ContentKeyDetailsResponse]


class UpdateRepositoryConfigBody(_Body):
    """``{"config": {"type": "GARBAGE_COLLECTOR", ...}}`` (Nessie spec 2.1)."""

    config: dict[str, Any]


__all__ = [
    "CONTENT_MERGE_PROPERTY",
    "CONTENT_MERGE_VERSION",
    "CommitMetaBody",
    "ConflictResponse",
    "ContentKeyBody",
    "ContentKeyDetailsResponse",
    "ContentMergeOutcome",
    "GetMultipleContentsBody",
    "MergeBody",
    "MergeKeyBehaviorBody",
    "MergeResponse",
    "NessieConfigurationResponse",
    "OperationBody",
    "OperationsBody",
    "ReferenceBody",
    "TransplantBody",
    "UpdateRepositoryConfigBody",
]
