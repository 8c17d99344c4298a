// Type-checked (never run) by scripts/api-contract against types that openapi-typescript generates
// from the live /openapi.json into ./api.d.ts. It fails when the document stops describing what a
// TypeScript client relies on. Keep it to shapes clients really read; extend it when they read more.
import type { paths } from "./api";
import createClient from "openapi-fetch";

// GET /users/me -> 200 application/json
type Me = paths["/users/me"]["get"]["responses"][200]["content"]["application/json"];

// Each field must exist and be required (an optional field would be `T | undefined` and fail here).
export function readMe(me: Me): { id: string | number; email: string; name: string; tier: string; role: string } {
  const id: string | number = me.user_id;
  const email: string = me.email;
  const name: string = me.name;
  const tier: string = me.tier;
  const role: string = me.role;
  return { id, email, name, tier, role };
}
const sampleEmail: Me["email"] = "a@example.com";

// GET /metadata/{system_id} -> 200 application/json, with a string path parameter `system_id`.
type Equipment = paths["/metadata/{system_id}"]["get"]["responses"][200]["content"]["application/json"];
type SystemId = paths["/metadata/{system_id}"]["get"]["parameters"]["path"]["system_id"];
// `never` (no such response) or a non-object body fails this assignment.
const equipmentIsObject: Equipment extends object ? true : false = true;
const sampleSystemId: SystemId = "rig-7";

// The same through a typed client (openapi-fetch): paths, params and response bodies line up.
export async function fetchBoth(baseUrl: string, apiKey: string): Promise<[Me, Equipment] | undefined> {
  const client = createClient<paths>({ baseUrl, headers: { "X-API-Key": apiKey } });
  const me = await client.GET("/users/me");
  const equipment = await client.GET("/metadata/{system_id}", { params: { path: { system_id: sampleSystemId } } });
  if (me.data === undefined || equipment.data === undefined) return undefined;
  const email: string = me.data.email;
  void email;
  return [me.data, equipment.data];
}

// GET /anomalies/systems/{system_id}/latest -> each component's class, its name and severity
// (null for scorers without classes). The record fails to type-check if the severity enum
// gains, loses or renames a grade, so a client's mapping of grades stays complete.
type Latest = paths["/anomalies/systems/{system_id}/latest"]["get"]["responses"][200]["content"]["application/json"];
type Severity = NonNullable<Latest["components"][number]["severity"]>;
const severityRank: Record<Severity, number> = { ok: 0, degraded: 1, severe: 2, failure: 3 };
export function worstCondition(latest: Latest): { component: string; name: string | null; severity: Severity } | undefined {
  let worst: { component: string; name: string | null; severity: Severity } | undefined;
  for (const c of latest.components) {
    const severity = c.severity ?? undefined;
    if (severity === undefined) continue;
    if (worst === undefined || severityRank[severity] > severityRank[worst.severity]) {
      worst = { component: c.component_id, name: c.class_name ?? null, severity };
    }
  }
  return worst;
}

export const checked = { sampleEmail, equipmentIsObject, severityRank };
