import type { StageEnd } from "../db/lifecycle/stage-transitions";
import type { JobRow } from "../db/types";
import { artifactKey, putJsonArtifact } from "./artifacts";
import { buildManifest } from "./manifest";
import { ARTIFACT_NAMES } from "./stages";

/** publish: manifest.json in R2, recording the publish stage as it ends (SUCCESS, now). */
export async function runPublish(env: Env, job: JobRow, startedAt: number): Promise<StageEnd> {
  const now = Date.now();
  const manifest = await buildManifest(
    env,
    job,
    {
      stage: "publish",
      status: "SUCCESS",
      startedAt: new Date(startedAt).toISOString(),
      endedAt: new Date(now).toISOString(),
      message: null,
      counts: null,
      artifact: null,
    },
    now,
  );
  const artifact = await putJsonArtifact(
    env.ARTIFACTS,
    artifactKey(job.id, ARTIFACT_NAMES.publish),
    manifest,
  );
  return {
    status: "SUCCESS",
    counts: { stages: manifest.stages.length, artifacts: manifest.artifacts.length },
    artifact,
  };
}
