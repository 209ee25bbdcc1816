/**
 * The network the Lambdas and the streamer run in, so they can reach databases that are only reachable inside a
 * VPC. Either a new SST VPC (public + private subnets, NAT for the private ones) or an existing one named by
 * FERRY_VPC_* (see settings.ts).
 */
import { settings } from './settings';

/** What sst.aws.Function takes for `vpc` when the VPC is not an SST component. */
export interface ExistingVpc {
  id: string;
  privateSubnets: string[];
  securityGroups: string[];
}

function createVpc(): sst.aws.Vpc | ExistingVpc {
  if (settings.vpc.existing) return settings.vpc.existing;
  const vpc = new sst.aws.Vpc('FerryVpc', { az: settings.vpc.az, nat: settings.vpc.nat });
  // DynamoDB through a gateway endpoint is free and keeps the state store's traffic off the NAT, which bills per GB.
  new aws.ec2.VpcEndpoint('FerryVpcDynamoEndpoint', {
    vpcId: vpc.id,
    serviceName: $interpolate`com.amazonaws.${aws.getRegionOutput().region}.dynamodb`,
    vpcEndpointType: 'Gateway',
    routeTableIds: vpc.nodes.privateRouteTables.apply((tables) => tables.map((t) => t.id)),
  });
  return vpc;
}

export const vpc = createVpc();

/** The `vpc` argument of every Lambda: the private subnets either way. */
export const functionVpc = vpc instanceof sst.aws.Vpc ? vpc : { privateSubnets: vpc.privateSubnets, securityGroups: vpc.securityGroups };

/**
 * The `vpc` argument of the ECS cluster: tasks in the private subnets either way, next to the Lambdas, without a
 * public IP, reaching the AWS APIs and any database outside the VPC through the NAT. (Given the SST VPC itself, SST
 * would put tasks in the public subnets with a public IP, so a database that allowlists the NAT's address would
 * admit the Lambdas but not the streamer.) No load balancer is created; the argument is required.
 */
export const clusterVpc =
  vpc instanceof sst.aws.Vpc
    ? {
        id: vpc.id,
        securityGroups: vpc.securityGroups,
        containerSubnets: vpc.privateSubnets,
        loadBalancerSubnets: vpc.publicSubnets,
      }
    : {
        id: vpc.id,
        securityGroups: vpc.securityGroups,
        containerSubnets: vpc.privateSubnets,
        loadBalancerSubnets: vpc.privateSubnets,
      };
