/**
 * API keys (#/keys): create one by signing with the wallet, see its secret once with ready snippets, list
 * the keys and revoke one. Keys live at the gateway, not on-chain: every request here is a wallet signature
 * over an EIP-712 message bound to this deployment, never a transaction.
 */
import { useCallback, useState } from "react";
import { listApiKeys, listGatewayModels, type CreateApiKeyReturnType, type GatewayApiKey } from "../../../../client";
import { useApp } from "../../app-state";
import { RequireWallet } from "../../components/require-wallet";
import { useLoad } from "../../lib/use-load";
import { useAction } from "../../lib/use-transaction";
import { CreateKeyForm } from "./create-key-form";
import { KeyList } from "./key-list";
import { NewKeySecret } from "./new-key-secret";

export function KeysPage() {
  const { client, account } = useApp();
  const models = useLoad(() => listGatewayModels(client), [client.gateway?.url]);
  const [created, setCreated] = useState<CreateApiKeyReturnType | undefined>();
  const [keys, setKeys] = useState<{ account: string; list: GatewayApiKey[] } | undefined>();
  const loader = useAction();
  const shownKeys = keys && keys.account === account ? keys.list : undefined;

  const load = useCallback(async () => {
    const list = await loader.run("Sign to list your keys", (signing) => listApiKeys(signing), (found) => `${found.length} key${found.length === 1 ? "" : "s"} found.`);
    if (list && account) setKeys({ account, list: [...list].sort((a, b) => b.created_at - a.created_at) });
  }, [loader, account]);

  const onCreated = (key: CreateApiKeyReturnType) => {
    setCreated(key);
    const { key: _secret, ...listed } = key;
    if (account) setKeys((previous) => ({ account, list: [listed, ...(previous && previous.account === account ? previous.list : [])] }));
  };
  const onRevoked = (id: string, at: number) =>
    setKeys((previous) => previous && { ...previous, list: previous.list.map((key) => (key.id === id ? { ...key, revoked_at: at } : key)) });

  const snippetModel = created?.models?.[0] ?? models.data?.find((model) => model.tollgate.kind === "chat")?.id ?? models.data?.[0]?.id ?? "MODEL";
  return (
    <>
      <RequireWallet purpose="create and manage API keys">
        {created && <NewKeySecret created={created} model={snippetModel} onDone={() => setCreated(undefined)} />}
        <CreateKeyForm models={models} onCreated={onCreated} />
        <KeyList keys={shownKeys} load={load} loader={loader} onRevoked={onRevoked} />
      </RequireWallet>
    </>
  );
}
