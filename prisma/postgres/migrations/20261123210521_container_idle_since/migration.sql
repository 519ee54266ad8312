-- AlterTable
ALTER TABLE "Container" ADD COLUMN     "idleSince" TIMESTAMP(3);

